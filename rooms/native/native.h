/* rooms._native's pieces, each in its own file, registered on the module by module.c. */
#ifndef YUNZHEN_NATIVE_H
#define YUNZHEN_NATIVE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Each adds its types (and functions, constants) to the module: 0, or -1 with an exception. */
int rate_add_to(PyObject *module);
int jitter_add_to(PyObject *module);
int srtp_add_to(PyObject *module);
int leg_add_to(PyObject *module);

#endif
