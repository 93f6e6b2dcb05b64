"""The C part of the media path (rooms/native/, the module rooms._native); everything else is in
pyproject.toml."""

from setuptools import Extension, setup

NATIVE = ["module.c", "rate.c", "jitter.c", "srtp.c", "leg.c", "sink.c", "stats.c",
          "inbound.c"]

setup(ext_modules=[Extension("rooms._native", [f"rooms/native/{name}" for name in NATIVE],
                             depends=["rooms/native/native.h"],
                             extra_compile_args=["-O2", "-Wall", "-Wextra"])])
