/* Inbound: what rooms/passthrough.py 14. does with each datagram of a DTLS transport, in C, for
 * the sources it knows (17.): the SRTP is unprotected, its header read, and a media packet of
 * a known source goes to the legs of its forwarder and through its receiver's bookkeeping
 * (REMB estimate, statistics, NACKs, depacketizing, jitter buffer) with Python called only for
 * what is rare (an audio level, RTCP feedback to send, a reassembled frame). SRTCP is
 * unprotected and handed to Python at once. Everything else (a source not yet known, RTX,
 * anything unusual) takes the Python path, which decides which sources the C path may take
 * (``Route``); STUN and DTLS go to aioice.
 */
#include "native.h"
#include <stddef.h>
#include <time.h>

/* Seconds from the NTP epoch (1900) to the Unix epoch (1970), in ms: aiortc's clock.current_ms
 * counts from 1900. */
#define NTP_OFFSET_MS 2208988800000LL
/* How often a source's last-heard time (aiortc's __active_ssrc, read by
 * getSynchronizationSources over 10 s) is written again. */
#define ACTIVE_EVERY_MS 500

enum { FEEDBACK_REMB = 0, FEEDBACK_NACK = 1, FEEDBACK_PLI = 2, FEEDBACK_ERROR = 3 };

static PyObject *name_enabled, *name_state, *name_rx_bytes, *name_rx_packets, *name_ssrc_table,
    *name_payload_type_table, *name_flag, *name_clear, *one;

/* Route: one source's path ------------------------------------------------------------------ */

#define ROUTE_OBJECTS 14

typedef struct {
    PyObject_HEAD
    /* Owned, in this order (route_new's keywords): the receiver and the codec of its packets;
     * writers, a list of LegWriters (its forwarder's), or None; clock, the legs' monotonic
     * clock, or None for time.monotonic; on_level(timestamp, level) or None; the receiver's
     * estimator (or None), this source's statistics, the NACK generator (or None) and the
     * jitter buffer, all rooms._native's; on_feedback(kind, value), for a REMB, NACK or PLI
     * to send or a tap's exception; on_frame(JitterFrame); the receiver's __active_ssrc, and
     * aiortc.clock.current_datetime to write it; its __decoder_error (a threading.Event). */
    PyObject *objects[ROUTE_OBJECTS];
    int payload_type, video, vp8;
    /* Header extension ids (0: not negotiated), as aiortc's parser reads them. */
    int mid_id, rid_id, repaired_rid_id, abs_send_time_id, transmission_offset_id,
        audio_level_id, transport_sequence_id;
    int has_active;
    int64_t active_ms;
    long long packets;
} Route;

enum { R_RECEIVER, R_CODEC, R_WRITERS, R_CLOCK, R_ON_LEVEL, R_ESTIMATOR, R_STATISTICS, R_NACKS,
       R_JITTER, R_ON_FEEDBACK, R_ON_FRAME, R_ACTIVE, R_NOW_DATETIME, R_DECODER_ERROR };

static PyObject *route_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"receiver", "codec", "writers", "clock", "on_level", "estimator",
                            "statistics", "nacks", "jitter", "on_feedback", "on_frame",
                            "active", "now_datetime", "decoder_error", "payload_type", "video",
                            "vp8", "extension_ids", NULL};
    PyObject *o[ROUTE_OBJECTS];
    int payload_type, video, vp8, ids[7];
    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "$OOOOOOOOOOOOOOipp(iiiiiii)", names, &o[0], &o[1], &o[2], &o[3],
            &o[4], &o[5], &o[6], &o[7], &o[8], &o[9], &o[10], &o[11], &o[12], &o[13],
            &payload_type, &video, &vp8, &ids[0], &ids[1], &ids[2], &ids[3], &ids[4], &ids[5],
            &ids[6]))
        return NULL;
    const char *problem = NULL;
    if (o[R_WRITERS] != Py_None && !PyList_Check(o[R_WRITERS]))
        problem = "writers must be a list or None";
    else if (o[R_ESTIMATOR] != Py_None && !PyObject_TypeCheck(o[R_ESTIMATOR], &RbeType))
        problem = "estimator must be rooms._native's";
    else if (!PyObject_TypeCheck(o[R_STATISTICS], &StatisticsType))
        problem = "statistics must be rooms._native's";
    else if (o[R_NACKS] != Py_None && !PyObject_TypeCheck(o[R_NACKS], &NacksType))
        problem = "nacks must be rooms._native's";
    else if (!PyObject_TypeCheck(o[R_JITTER], &JitterBufferType))
        problem = "jitter must be rooms._native's";
    else if (!PyDict_Check(o[R_ACTIVE]))
        problem = "active must be a dict";
    else if (!PyCallable_Check(o[R_ON_FEEDBACK]) || !PyCallable_Check(o[R_ON_FRAME])
             || !PyCallable_Check(o[R_NOW_DATETIME])
             || (o[R_CLOCK] != Py_None && !PyCallable_Check(o[R_CLOCK]))
             || (o[R_ON_LEVEL] != Py_None && !PyCallable_Check(o[R_ON_LEVEL])))
        problem = "on_feedback, on_frame, now_datetime, clock and on_level must be callable";
    else if (payload_type < 0 || payload_type > 127)
        problem = "payload_type out of range";
    if (problem != NULL) {
        PyErr_Format(PyExc_TypeError, "Route: %s", problem);
        return NULL;
    }
    Route *self = (Route *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    for (int i = 0; i < ROUTE_OBJECTS; i++)
        self->objects[i] = Py_NewRef(o[i]);
    self->payload_type = payload_type;
    self->video = video;
    self->vp8 = vp8;
    self->mid_id = ids[0];
    self->rid_id = ids[1];
    self->repaired_rid_id = ids[2];
    self->abs_send_time_id = ids[3];
    self->transmission_offset_id = ids[4];
    self->audio_level_id = ids[5];
    self->transport_sequence_id = ids[6];
    return (PyObject *)self;
}

static int route_traverse(Route *self, visitproc visit, void *arg)
{
    for (int i = 0; i < ROUTE_OBJECTS; i++)
        Py_VISIT(self->objects[i]);
    return 0;
}

static int route_clear(Route *self)
{
    for (int i = 0; i < ROUTE_OBJECTS; i++)
        Py_CLEAR(self->objects[i]);
    return 0;
}

static void route_dealloc(Route *self)
{
    PyObject_GC_UnTrack(self);
    route_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *route_get_packets(Route *self, void *closure)
{
    (void)closure;
    return PyLong_FromLongLong(self->packets);
}

static PyGetSetDef route_getset[] = {
    {"packets", (getter)route_get_packets, NULL, "packets taken by the C path", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject RouteType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rooms._native.Route",
    .tp_basicsize = sizeof(Route),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Route(*, receiver, codec, writers, ...): how Inbound takes one source's media "
              "packets.",
    .tp_new = route_new,
    .tp_traverse = (traverseproc)route_traverse,
    .tp_clear = (inquiry)route_clear,
    .tp_dealloc = (destructor)route_dealloc,
    .tp_getset = route_getset,
};

/* Inbound: one transport's datagrams ---------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *original;   /* aioice's datagram_received: STUN, DTLS, SRTCP */
    PyObject *dtls, *connected, *srtp;
    PyObject *slow;       /* callable(rtp, arrival_time_ms): the Python path */
    PyObject *rtcp;       /* callable(rtcp): a decrypted RTCP datagram */
    PyObject *router;     /* the transport's RtpRouter */
    PyObject *routes;     /* {ssrc: Route, or None for a source the Python path keeps} */
} Inbound;

static PyObject *inbound_call(Inbound *self, PyObject *const *args, size_t nargsf,
                              PyObject *kwnames);

static PyObject *inbound_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"original", "dtls", "connected", "srtp", "slow", "rtcp", "router",
                            NULL};
    PyObject *original, *dtls, *connected, *srtp, *slow, *rtcp, *router;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOOO", names, &original, &dtls,
                                     &connected, &srtp, &slow, &rtcp, &router))
        return NULL;
    if (!PyCallable_Check(original) || !PyCallable_Check(slow) || !PyCallable_Check(rtcp)) {
        PyErr_SetString(PyExc_TypeError, "Inbound: original, slow and rtcp must be callable");
        return NULL;
    }
    Inbound *self = (Inbound *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->vectorcall = (vectorcallfunc)inbound_call;
    self->original = Py_NewRef(original);
    self->dtls = Py_NewRef(dtls);
    self->connected = Py_NewRef(connected);
    self->srtp = Py_NewRef(srtp);
    self->slow = Py_NewRef(slow);
    self->rtcp = Py_NewRef(rtcp);
    self->router = Py_NewRef(router);
    self->routes = PyDict_New();
    if (self->routes == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int inbound_traverse(Inbound *self, visitproc visit, void *arg)
{
    Py_VISIT(self->original);
    Py_VISIT(self->dtls);
    Py_VISIT(self->connected);
    Py_VISIT(self->srtp);
    Py_VISIT(self->slow);
    Py_VISIT(self->rtcp);
    Py_VISIT(self->router);
    Py_VISIT(self->routes);
    return 0;
}

static int inbound_clear(Inbound *self)
{
    Py_CLEAR(self->original);
    Py_CLEAR(self->dtls);
    Py_CLEAR(self->connected);
    Py_CLEAR(self->srtp);
    Py_CLEAR(self->slow);
    Py_CLEAR(self->rtcp);
    Py_CLEAR(self->router);
    Py_CLEAR(self->routes);
    return 0;
}

static void inbound_dealloc(Inbound *self)
{
    PyObject_GC_UnTrack(self);
    inbound_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A packet's header as the C path reads it. */
typedef struct {
    int marker, payload_type;
    uint16_t sequence;
    uint32_t timestamp, ssrc;
    Py_ssize_t payload_start, payload_end, padding;
    const unsigned char *extensions;
    Py_ssize_t extensions_length;
    int extension_profile;
} Header;

/* RFC 3550's header, as aiortc's RtpPacket.parse reads it: 0 for anything it would refuse. */
static int read_header(const unsigned char *b, Py_ssize_t length, Header *h)
{
    int cc = b[0] & 0x0F;
    h->marker = b[1] >> 7;
    h->payload_type = b[1] & 0x7F;
    h->sequence = (uint16_t)((b[2] << 8) | b[3]);
    h->timestamp = ((uint32_t)b[4] << 24) | ((uint32_t)b[5] << 16) | ((uint32_t)b[6] << 8) | b[7];
    h->ssrc = ((uint32_t)b[8] << 24) | ((uint32_t)b[9] << 16) | ((uint32_t)b[10] << 8) | b[11];
    Py_ssize_t pos = 12 + 4 * cc;
    if ((b[0] >> 6) != 2 || length < pos)
        return 0;
    h->extensions = NULL;
    h->extensions_length = 0;
    h->extension_profile = 0;
    if (b[0] & 0x10) {
        if (length < pos + 4)
            return 0;
        h->extension_profile = (b[pos] << 8) | b[pos + 1];
        h->extensions_length = 4 * ((b[pos + 2] << 8) | b[pos + 3]);
        pos += 4;
        if (length < pos + h->extensions_length)
            return 0;
        h->extensions = b + pos;
        pos += h->extensions_length;
    }
    h->padding = 0;
    if (b[0] & 0x20) {
        h->padding = b[length - 1];
        if (!h->padding || h->padding > length - pos)
            return 0;
    }
    h->payload_start = pos;
    h->payload_end = length - h->padding;
    return 1;
}

/* The values a route reads from the header extensions (RFC 8285): 1, or 0 when the packet
 * must take the Python path (an extension aiortc's parser would refuse). */
static int read_extensions(const Route *route, const Header *h, int *has_abs_send_time,
                           int64_t *abs_send_time, Incoming *in)
{
    *has_abs_send_time = 0;
    in->has_level = in->voice = in->level = 0;
    const unsigned char *e = h->extensions;
    Py_ssize_t length = h->extensions_length, pos = 0;
    int one_byte = h->extension_profile == 0xBEDE;
    if (e == NULL || (!one_byte && h->extension_profile != 0x1000))
        return 1;  /* aiortc reads no extension from another profile */
    while (pos < length) {
        if (e[pos] == 0) {
            pos += 1;
            continue;
        }
        int id, size;
        if (one_byte) {
            id = e[pos] >> 4;
            size = (e[pos] & 0x0F) + 1;
            pos += 1;
        } else {
            if (length < pos + 2)
                return 0;
            id = e[pos];
            size = e[pos + 1];
            pos += 2;
        }
        if (length < pos + size)
            return 0;
        const unsigned char *value = e + pos;
        pos += size;
        if (id == route->mid_id) {
            /* Routing is by SSRC here; aiortc refuses a mid that is not UTF-8. */
            PyObject *mid = PyUnicode_DecodeUTF8((const char *)value, size, NULL);
            if (mid == NULL) {
                PyErr_Clear();
                return 0;
            }
            Py_DECREF(mid);
        } else if (id == route->rid_id || id == route->repaired_rid_id) {
            for (int i = 0; i < size; i++)
                if (value[i] > 0x7F)
                    return 0;  /* aiortc refuses a stream id that is not ASCII */
        } else if (id == route->abs_send_time_id) {
            if (size != 3)
                return 0;
            *has_abs_send_time = 1;
            *abs_send_time = (value[0] << 16) | (value[1] << 8) | value[2];
        } else if (id == route->transmission_offset_id) {
            if (size != 3)
                return 0;
        } else if (id == route->audio_level_id) {
            if (size != 1)
                return 0;
            in->has_level = 1;
            in->voice = (value[0] & 0x80) != 0;
            in->level = value[0] & 0x7F;
        } else if (id == route->transport_sequence_id) {
            if (size != 2)
                return 0;
        }
    }
    return 1;
}

/* Call ``callable(kind, value)`` (steals ``value``): 0, or -1 with an exception. */
static int feedback(Route *route, int kind, PyObject *value)
{
    if (value == NULL)
        return -1;
    PyObject *result = PyObject_CallFunction(route->objects[R_ON_FEEDBACK], "iN", kind, value);
    Py_XDECREF(result);
    return result == NULL ? -1 : 0;
}

/* An exception of a tap (the legs, the level) goes to on_feedback, as the Python path logs it;
 * the packet goes on through the receiver. */
static int report_tap_error(Route *route)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL && value != NULL)
        PyException_SetTraceback(value, traceback);
    Py_XDECREF(type);
    Py_XDECREF(traceback);
    return feedback(route, FEEDBACK_ERROR, value != NULL ? value : Py_NewRef(Py_None));
}

static double clock_seconds(clockid_t id)
{
    struct timespec now;
    clock_gettime(id, &now);
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

/* The C path for one decrypted packet: 1 taken, 0 for the Python path, -1 an exception. */
static int inbound_take(Inbound *self, PyObject *rtp, int64_t arrival_ms)
{
    const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(rtp);
    Py_ssize_t length = PyBytes_GET_SIZE(rtp);
    Header h;
    if (length < 12 || !read_header(b, length, &h))
        return 0;
    PyObject *ssrc = PyLong_FromUnsignedLong(h.ssrc);
    if (ssrc == NULL)
        return -1;
    Route *route = (Route *)PyDict_GetItemWithError(self->routes, ssrc);
    int result = 0;
    if (route == NULL || !PyObject_TypeCheck(route, &RouteType)) {
        result = PyErr_Occurred() ? -1 : 0;  /* None: a source the Python path keeps */
        goto done;
    }
    Py_INCREF(route);
    if (route->payload_type != h.payload_type)
        goto release;
    /* Still this receiver's, by the router's tables (a renegotiation may change them). */
    PyObject *table = PyObject_GetAttr(self->router, name_ssrc_table);
    if (table == NULL)
        goto error;
    PyObject *routed = PyDict_GetItemWithError(table, ssrc);
    Py_DECREF(table);
    if (routed != route->objects[R_RECEIVER]) {
        if (PyErr_Occurred() || PyDict_DelItem(self->routes, ssrc) < 0)
            goto error;
        goto release;
    }
    table = PyObject_GetAttr(self->router, name_payload_type_table);
    if (table == NULL)
        goto error;
    PyObject *key = PyLong_FromLong(h.payload_type);
    PyObject *by_type = key == NULL ? NULL : PyDict_GetItemWithError(table, key);
    Py_XDECREF(key);
    Py_DECREF(table);
    int listed = by_type == NULL ? (PyErr_Occurred() ? -1 : 0)
                                 : PySet_Contains(by_type, route->objects[R_RECEIVER]);
    if (listed <= 0) {
        if (listed < 0 || PyDict_DelItem(self->routes, ssrc) < 0)
            goto error;
        goto release;
    }
    Incoming in = {.source = h.ssrc, .sequence = h.sequence, .timestamp = h.timestamp,
                   .marker = h.marker};
    int has_abs_send_time;
    int64_t abs_send_time = 0;
    if (!read_extensions(route, &h, &has_abs_send_time, &abs_send_time, &in))
        goto release;
    result = 1;
    route->packets += 1;
    PyObject *payload = PyBytes_FromStringAndSize((const char *)b + h.payload_start,
                                                  h.payload_end - h.payload_start);
    if (payload == NULL)
        goto error;
    in.payload = payload;
    double wall = clock_seconds(CLOCK_REALTIME);
    /* The taps (8.): the forwarder's legs, the audio level; padding-only packets have none. */
    if (PyBytes_GET_SIZE(payload)) {
        PyObject *writers = route->objects[R_WRITERS];
        if (writers != Py_None && PyList_GET_SIZE(writers)) {
            double now;
            if (route->objects[R_CLOCK] == Py_None) {
                now = clock_seconds(CLOCK_MONOTONIC);
            } else {
                PyObject *value = PyObject_CallNoArgs(route->objects[R_CLOCK]);
                now = value == NULL ? -1.0 : PyFloat_AsDouble(value);
                Py_XDECREF(value);
            }
            if ((PyErr_Occurred()
                 || legs_forward(writers, &in, route->objects[R_CODEC], now, wall) < 0)
                    && report_tap_error(route) < 0)
                goto error_payload;
        }
        if (in.has_level && route->objects[R_ON_LEVEL] != Py_None) {
            PyObject *value = PyObject_CallFunction(route->objects[R_ON_LEVEL], "ki",
                                                    (unsigned long)h.timestamp, in.level);
            Py_XDECREF(value);
            if (value == NULL && report_tap_error(route) < 0)
                goto error_payload;
        }
    }
    /* The receiver's bookkeeping, in _handle_rtp_packet's order, while it is enabled (5.). */
    PyObject *enabled_value = PyObject_GetAttr(route->objects[R_RECEIVER], name_enabled);
    int enabled = enabled_value == NULL ? -1 : PyObject_IsTrue(enabled_value);
    Py_XDECREF(enabled_value);
    if (enabled <= 0) {
        Py_DECREF(payload);
        if (enabled < 0)
            goto error;
        goto release;
    }
    if (route->objects[R_ESTIMATOR] != Py_None && has_abs_send_time) {
        PyObject *remb = estimator_add(route->objects[R_ESTIMATOR], arrival_ms, abs_send_time,
                                       PyBytes_GET_SIZE(payload) + h.padding, h.ssrc);
        if (remb == NULL)
            goto error_payload;
        if (remb == Py_None)
            Py_DECREF(remb);
        else if (feedback(route, FEEDBACK_REMB, remb) < 0)
            goto error_payload;
    }
    if (!route->has_active || arrival_ms - route->active_ms >= ACTIVE_EVERY_MS) {
        PyObject *when = PyObject_CallNoArgs(route->objects[R_NOW_DATETIME]);
        if (when == NULL || PyDict_SetItem(route->objects[R_ACTIVE], ssrc, when) < 0) {
            Py_XDECREF(when);
            goto error_payload;
        }
        Py_DECREF(when);
        route->has_active = 1;
        route->active_ms = arrival_ms;
    }
    statistics_add(route->objects[R_STATISTICS], h.sequence, h.timestamp, wall);
    if (route->objects[R_NACKS] != Py_None) {
        int missed = nacks_add(route->objects[R_NACKS], h.sequence);
        if (missed < 0 || (missed && feedback(route, FEEDBACK_NACK, Py_NewRef(Py_None)) < 0))
            goto error_payload;
    }
    PyObject *data;
    if (route->vp8 && PyBytes_GET_SIZE(payload)) {
        data = vp8_depayload_bytes((const unsigned char *)PyBytes_AS_STRING(payload),
                                   PyBytes_GET_SIZE(payload));
        if (data == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_ValueError))
                goto error_payload;
            PyErr_Clear();  /* as the Python path: a packet aiortc cannot depacketize stops */
            Py_DECREF(payload);
            goto release;
        }
    } else {
        data = Py_NewRef(payload);
    }
    Py_DECREF(payload);
    int pli;
    PyObject *frame;
    int added = jitter_add(route->objects[R_JITTER], h.sequence, h.timestamp, data, &pli,
                           &frame);
    Py_DECREF(data);
    if (added < 0)
        goto error;
    PyObject *flag = PyObject_GetAttr(route->objects[R_DECODER_ERROR], name_flag);
    int decoder_failed = flag == NULL ? -1 : PyObject_IsTrue(flag);
    Py_XDECREF(flag);
    if (decoder_failed > 0) {
        PyObject *cleared = PyObject_CallMethodNoArgs(route->objects[R_DECODER_ERROR],
                                                      name_clear);
        Py_XDECREF(cleared);
        decoder_failed = cleared == NULL ? -1 : 1;
        pli = pli || route->video;  /* report the lost picture (RFC 4585 section 6.3.1.1) */
    }
    if (decoder_failed < 0 || (pli && feedback(route, FEEDBACK_PLI, Py_NewRef(Py_None)) < 0)) {
        Py_XDECREF(frame);
        goto error;
    }
    if (frame != NULL) {
        PyObject *value = PyObject_CallOneArg(route->objects[R_ON_FRAME], frame);
        Py_DECREF(frame);
        Py_XDECREF(value);
        if (value == NULL)
            goto error;
    }
    goto release;
error_payload:
    Py_DECREF(payload);
error:
    result = -1;
release:
    Py_DECREF(route);
done:
    Py_DECREF(ssrc);
    return result;
}

/* datagram_received(data, addr) */
static PyObject *inbound_call(Inbound *self, PyObject *const *args, size_t nargsf,
                              PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 2 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames))) {
        PyErr_SetString(PyExc_TypeError, "datagram_received(data, addr)");
        return NULL;
    }
    PyObject *data = args[0];
    const unsigned char *b = PyBytes_Check(data) ? (const unsigned char *)PyBytes_AS_STRING(data)
                                                 : NULL;
    Py_ssize_t length = b != NULL ? PyBytes_GET_SIZE(data) : 0;
    PyObject *state = NULL;
    /* SRTCP, as aiortc's is_rtcp tells it (the second byte 192-208: RFC 5761's 192-223 less
     * the ones aiortc reads as RTP). */
    int rtcp = b != NULL && length >= 2 && b[1] > 191 && b[1] < 209;
    if (b == NULL || (length < 12 && !rtcp) || !(b[0] > 127 && b[0] < 192)
            || (!rtcp && b[1] > 191 && b[1] < 224)
            || (state = PyObject_GetAttr(self->dtls, name_state)) != self->connected) {
        /* STUN, DTLS, what aiortc would not read, or a transport on its way out. */
        Py_XDECREF(state);
        if (PyErr_Occurred())
            return NULL;
        return PyObject_Vectorcall(self->original, args, 2, NULL);
    }
    Py_DECREF(state);
    PyObject *size = PyLong_FromSsize_t(length);
    int counted = size == NULL ? -1 : add_to_attribute(self->dtls, name_rx_bytes, size);
    Py_XDECREF(size);
    if (counted < 0 || add_to_attribute(self->dtls, name_rx_packets, one) < 0)
        return NULL;
    if (rtcp) {
        PyObject *report = srtp_unprotect_bytes(self->srtp, data, 1);
        if (report == NULL) {
            if (PyErr_ExceptionMatches(PyExc_MemoryError))
                return NULL;
            PyErr_Clear();  /* as aiortc: what fails authentication is dropped */
            Py_RETURN_NONE;
        }
        PyObject *result = PyObject_CallOneArg(self->rtcp, report);
        Py_DECREF(report);
        return result;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t arrival_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 + NTP_OFFSET_MS;
    PyObject *rtp = srtp_unprotect_bytes(self->srtp, data, 0);
    if (rtp == NULL) {
        if (PyErr_ExceptionMatches(PyExc_MemoryError))
            return NULL;
        PyErr_Clear();  /* as aiortc: a packet that fails authentication is dropped */
        Py_RETURN_NONE;
    }
    int taken = inbound_take(self, rtp, arrival_ms);
    PyObject *result = NULL;
    if (taken == 0) {
        PyObject *when = PyLong_FromLongLong(arrival_ms);
        if (when != NULL) {
            result = PyObject_CallFunctionObjArgs(self->slow, rtp, when, NULL);
            Py_DECREF(when);
        }
    } else if (taken > 0) {
        result = Py_NewRef(Py_None);
    }
    Py_DECREF(rtp);
    return result;
}

static PyObject *inbound_get_routes(Inbound *self, void *closure)
{
    (void)closure;
    return Py_NewRef(self->routes);
}

static PyGetSetDef inbound_getset[] = {
    {"routes", (getter)inbound_get_routes, NULL,
     "{ssrc: Route or None}: the sources the C path takes (None: it does not)",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject InboundType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rooms._native.Inbound",
    .tp_basicsize = sizeof(Inbound),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "Inbound(original, dtls, connected, srtp, slow, rtcp, router): a DTLS "
              "transport's datagram_received, in C for the sources in ``routes``.",
    .tp_new = inbound_new,
    .tp_traverse = (traverseproc)inbound_traverse,
    .tp_clear = (inquiry)inbound_clear,
    .tp_dealloc = (destructor)inbound_dealloc,
    .tp_vectorcall_offset = offsetof(Inbound, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_getset = inbound_getset,
};

int inbound_add_to(PyObject *module)
{
    if (one == NULL) {
        const char *strings[] = {"_enabled", "_state", "_RTCDtlsTransport__rx_bytes",
                                 "_RTCDtlsTransport__rx_packets", "ssrc_table",
                                 "payload_type_table", "_flag", "clear"};
        PyObject **names[] = {&name_enabled, &name_state, &name_rx_bytes, &name_rx_packets,
                              &name_ssrc_table, &name_payload_type_table, &name_flag,
                              &name_clear};
        for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
            if ((*names[i] = PyUnicode_InternFromString(strings[i])) == NULL)
                return -1;
        if ((one = PyLong_FromLong(1)) == NULL)
            return -1;
    }
    if (PyType_Ready(&RouteType) < 0 || PyType_Ready(&InboundType) < 0
            || PyModule_AddObjectRef(module, "Route", (PyObject *)&RouteType) < 0
            || PyModule_AddIntConstant(module, "FEEDBACK_REMB", FEEDBACK_REMB) < 0
            || PyModule_AddIntConstant(module, "FEEDBACK_NACK", FEEDBACK_NACK) < 0
            || PyModule_AddIntConstant(module, "FEEDBACK_PLI", FEEDBACK_PLI) < 0
            || PyModule_AddIntConstant(module, "FEEDBACK_ERROR", FEEDBACK_ERROR) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "Inbound", (PyObject *)&InboundType);
}
