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
int sink_add_to(PyObject *module);
int stats_add_to(PyObject *module);

/* srtp.c: ``data`` protected (or unprotected) by ``srtp``, a rooms._native.Srtp; NULL with
 * pylibsrtp's error or a TypeError. */
enum srtp_step { SRTP_PROTECT, SRTP_UNPROTECT, SRTP_PROTECT_RTCP };
PyObject *srtp_apply(PyObject *srtp, PyObject *data, enum srtp_step step);

/* sink.c: an RtpSink's send of ``data`` (RTCP when ``rtcp``): 1 sent, 0 not connected, -1 an
 * exception. */
typedef struct RtpSink RtpSink;
extern PyTypeObject RtpSinkType;
int sink_send(RtpSink *sink, PyObject *data, int rtcp);

#endif
