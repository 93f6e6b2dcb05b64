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
int inbound_add_to(PyObject *module);

/* srtp.c: ``data`` unprotected by ``srtp``, a rooms._native.Srtp (SRTCP when ``rtcp``); NULL
 * with pylibsrtp's error or a TypeError. (Sending protects in place: srtp_protect_buffer.) */
PyObject *srtp_unprotect_bytes(PyObject *srtp, PyObject *data, int rtcp);

/* srtp.c: ``buffer`` (SINK_BUFFER bytes, the packet's ``*length`` first) protected in place by
 * ``srtp``, a rooms._native.Srtp (SRTCP when ``rtcp``): 0, or -1 with pylibsrtp's error or a
 * ValueError for a packet too long (pylibsrtp's limits). */
#define SINK_BUFFER 1500
#define SRTP_MAX_TRAILER (16 + 128)
#define SRTCP_MAX_TRAILER (4 + 16 + 128)
int srtp_protect_buffer(PyObject *srtp, unsigned char *buffer, int *length, int rtcp);

/* sink.c: an RtpSink's send of ``data`` (RTCP when ``rtcp``), or of the packet in ``buffer``
 * (SINK_BUFFER bytes, ``length`` of them the packet; protected in place): 1 sent, 0 not
 * connected (or dropped by the socket), -1 an exception. */
typedef struct RtpSink RtpSink;
extern PyTypeObject RtpSinkType;
int sink_send(RtpSink *sink, PyObject *data, int rtcp);
int sink_send_buffer(RtpSink *sink, unsigned char *buffer, Py_ssize_t length, int rtcp);

/* rate.c, jitter.c, stats.c: the receive bookkeeping on numbers, for inbound.c (each as the
 * Python method of the same name; NULL or -1 with an exception). */
PyObject *estimator_add(PyObject *estimator, int64_t arrival_time_ms, int64_t abs_send_time,
                        int64_t payload_size, int64_t ssrc);
int jitter_add(PyObject *buffer, int64_t sequence, int64_t timestamp, PyObject *data, int *pli,
               PyObject **frame);
PyObject *vp8_depayload_bytes(const unsigned char *data, Py_ssize_t length);
int statistics_add(PyObject *statistics, long sequence, long long timestamp, double now);
int nacks_add(PyObject *nacks, long sequence);  /* 1 when packets are missing before it */
extern PyTypeObject RbeType, JitterBufferType, StatisticsType, NacksType;

/* leg.c: a publisher's packet, for forward. */
typedef struct {
    uint32_t source;
    uint16_t sequence;
    uint32_t timestamp;
    int marker, has_level, voice, level;
    PyObject *payload;  /* bytes, borrowed */
} Incoming;
/* The packet sent on every live leg of ``legs`` (a sequence of LegWriters): how many, or -1
 * with the first exception (after the other legs had it). */
Py_ssize_t legs_forward(PyObject *legs, const Incoming *in, PyObject *codec, double now,
                        double wall);

/* sink.c: ``amount`` added to the integer attribute ``name`` of ``owner``. */
int add_to_attribute(PyObject *owner, PyObject *name, PyObject *amount);

#endif
