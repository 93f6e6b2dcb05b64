"""The C part of the media path (rooms/_native.c); everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("rooms._native", ["rooms/_native.c"],
                             extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror"])])
