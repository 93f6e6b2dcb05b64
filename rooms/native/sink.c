/* RtpSink: a synchronous send of RTP and RTCP on one aiortc DTLS transport, without its
 * coroutines (rooms/passthrough.py 12.): the same checks and steps as aiortc's _send_rtp and
 * aioice's Connection.sendto, in C, protecting in place and writing to the datagram
 * transport's socket itself. Each send reads the transport's state, pair, datagram transport
 * and SRTP session again, so a closed, restarted or re-keyed transport is never written to
 * with what it had before.
 */
#include "native.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

static PyObject *name_state, *name_protocol, *name_remote_addr, *name_transport,
    *name_is_closing, *name_tx_srtp, *name_tx_bytes, *name_tx_packets, *one;

struct RtpSink {
    PyObject_HEAD
    PyObject *dtls;       /* the RTCDtlsTransport */
    PyObject *nominated;  /* its ICE connection's _nominated: {component: CandidatePair} */
    PyObject *connected;  /* DtlsState.CONNECTED */
    PyObject *make_srtp;  /* pylibsrtp.Session -> rooms._native.Srtp */
    /* Read from the transport when it changes: the pair and its protocol and remote address,
     * the SRTP session and its Srtp. */
    PyObject *pair, *protocol, *transport, *remote;
    struct sockaddr_storage address;  /* the remote address; address_length 0: not numeric */
    socklen_t address_length;
    int fd;
    PyObject *session, *srtp;
    long long sent, dropped;
};

static PyObject *sink_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"dtls", "nominated", "connected", "make_srtp", NULL};
    PyObject *dtls, *nominated, *connected, *make_srtp;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO!OO", names, &dtls, &PyDict_Type,
                                     &nominated, &connected, &make_srtp))
        return NULL;
    if (!PyCallable_Check(make_srtp)) {
        PyErr_SetString(PyExc_TypeError, "RtpSink: make_srtp must be callable");
        return NULL;
    }
    RtpSink *self = (RtpSink *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->dtls = Py_NewRef(dtls);
    self->nominated = Py_NewRef(nominated);
    self->connected = Py_NewRef(connected);
    self->make_srtp = Py_NewRef(make_srtp);
    return (PyObject *)self;
}

static int sink_traverse(RtpSink *self, visitproc visit, void *arg)
{
    Py_VISIT(self->dtls);
    Py_VISIT(self->nominated);
    Py_VISIT(self->connected);
    Py_VISIT(self->make_srtp);
    Py_VISIT(self->pair);
    Py_VISIT(self->protocol);
    Py_VISIT(self->transport);
    Py_VISIT(self->remote);
    Py_VISIT(self->session);
    Py_VISIT(self->srtp);
    return 0;
}

static int sink_clear(RtpSink *self)
{
    Py_CLEAR(self->dtls);
    Py_CLEAR(self->nominated);
    Py_CLEAR(self->connected);
    Py_CLEAR(self->make_srtp);
    Py_CLEAR(self->pair);
    Py_CLEAR(self->protocol);
    Py_CLEAR(self->transport);
    Py_CLEAR(self->remote);
    Py_CLEAR(self->session);
    Py_CLEAR(self->srtp);
    return 0;
}

static void sink_dealloc(RtpSink *self)
{
    PyObject_GC_UnTrack(self);
    sink_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Add ``amount`` to the integer attribute ``name`` of ``owner``. */
int add_to_attribute(PyObject *owner, PyObject *name, PyObject *amount)
{
    PyObject *value = PyObject_GetAttr(owner, name);
    if (value == NULL)
        return -1;
    PyObject *sum = PyNumber_Add(value, amount);
    Py_DECREF(value);
    if (sum == NULL)
        return -1;
    int result = PyObject_SetAttr(owner, name, sum);
    Py_DECREF(sum);
    return result;
}

/* The datagram socket of ``transport`` (its get_extra_info("socket").fileno()): -1 with an
 * exception. */
static int transport_fd(PyObject *transport)
{
    PyObject *socket = PyObject_CallMethod(transport, "get_extra_info", "s", "socket");
    if (socket == NULL)
        return -1;
    PyObject *fileno = socket == Py_None ? NULL : PyObject_CallMethod(socket, "fileno", NULL);
    Py_DECREF(socket);
    if (fileno == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "RtpSink: the transport has no socket");
        return -1;
    }
    long fd = PyLong_AsLong(fileno);
    Py_DECREF(fileno);
    return fd < 0 ? -1 : (int)fd;
}

/* ``address`` ((host, port), as aioice gives a pair's) as a socket address: 0, or -1 with an
 * exception. */
static int socket_address(PyObject *address, struct sockaddr_storage *out, socklen_t *length)
{
    const char *host;
    int port;
    if (!PyArg_ParseTuple(address, "si", &host, &port))
        return -1;
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *length = sizeof(*v4);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *length = sizeof(*v6);
    } else {
        PyErr_Format(PyExc_ValueError, "RtpSink: %s is not an IP address", host);
        return -1;
    }
    return 0;
}

int sink_send_buffer(RtpSink *self, unsigned char *buffer, Py_ssize_t length, int rtcp)
{
    if (self->dtls == NULL)
        return 0;
    /* DTLS connected, a nominated pair, its datagram transport open (aiortc and aioice's
     * checks), ... */
    PyObject *state = PyObject_GetAttr(self->dtls, name_state);
    if (state == NULL)
        return -1;
    Py_DECREF(state);
    if (state != self->connected)
        return 0;
    PyObject *pair = PyDict_GetItemWithError(self->nominated, one);  /* borrowed */
    if (pair == NULL)
        return PyErr_Occurred() ? -1 : 0;
    if (pair != self->pair) {
        PyObject *protocol = PyObject_GetAttr(pair, name_protocol);
        if (protocol == NULL)
            return -1;
        PyObject *address = PyObject_GetAttr(pair, name_remote_addr);
        if (address == NULL) {
            Py_DECREF(protocol);
            return -1;
        }
        if (socket_address(address, &self->address, &self->address_length) < 0) {
            /* Not a numeric address (a scoped IPv6 one): the transport's sendto resolves it. */
            PyErr_Clear();
            self->address_length = 0;
        }
        Py_XSETREF(self->remote, address);
        Py_XSETREF(self->protocol, protocol);
        Py_XSETREF(self->pair, Py_NewRef(pair));
    }
    PyObject *transport = PyObject_GetAttr(self->protocol, name_transport);
    if (transport == NULL)
        return -1;
    if (transport == Py_None) {
        Py_DECREF(transport);
        return 0;
    }
    PyObject *closing = PyObject_CallMethodNoArgs(transport, name_is_closing);
    int is_closing = closing == NULL ? -1 : PyObject_IsTrue(closing);
    Py_XDECREF(closing);
    if (is_closing != 0) {
        Py_DECREF(transport);
        return is_closing < 0 ? -1 : 0;
    }
    if (transport != self->transport) {
        /* Its socket, read once: while this transport is open it keeps it. */
        int fd = transport_fd(transport);
        if (fd < 0) {
            Py_DECREF(transport);
            return -1;
        }
        self->fd = fd;
        Py_XSETREF(self->transport, Py_NewRef(transport));
    }
    Py_DECREF(transport);
    /* ... the transport's SRTP session (set when DTLS connects, again after a restart) ... */
    PyObject *session = PyObject_GetAttr(self->dtls, name_tx_srtp);
    if (session == NULL)
        return -1;
    if (session != self->session) {
        PyObject *srtp = PyObject_CallOneArg(self->make_srtp, session);
        if (srtp == NULL) {
            Py_DECREF(session);
            return -1;
        }
        Py_XSETREF(self->srtp, srtp);
        Py_XSETREF(self->session, Py_NewRef(session));
    }
    Py_DECREF(session);
    /* ... then protected, sent on the transport's socket (as its sendto does, without the
     * call; a datagram the socket cannot take now is dropped, as UDP would), and counted in
     * the transport's getStats counters. */
    int protected_length = (int)length;
    if (srtp_protect_buffer(self->srtp, buffer, &protected_length, rtcp) < 0)
        return -1;
    if (self->address_length == 0) {
        PyObject *result = PyObject_CallMethod(self->transport, "sendto", "y#O",
                                               (const char *)buffer,
                                               (Py_ssize_t)protected_length, self->remote);
        if (result == NULL)
            return -1;
        Py_DECREF(result);
    } else if (sendto(self->fd, buffer, (size_t)protected_length, MSG_DONTWAIT,
                      (struct sockaddr *)&self->address, self->address_length) < 0) {
        self->dropped += 1;
        return 0;
    }
    PyObject *size = PyLong_FromLong(protected_length);
    if (size == NULL)
        return -1;
    int counted = add_to_attribute(self->dtls, name_tx_bytes, size);
    Py_DECREF(size);
    if (counted < 0 || add_to_attribute(self->dtls, name_tx_packets, one) < 0)
        return -1;
    self->sent += 1;
    return 1;
}

int sink_send(RtpSink *self, PyObject *data, int rtcp)
{
    if (!PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "packet must be bytes");
        return -1;
    }
    Py_ssize_t length = PyBytes_GET_SIZE(data);
    if (length > SINK_BUFFER - (rtcp ? SRTCP_MAX_TRAILER : SRTP_MAX_TRAILER)) {
        PyErr_SetString(PyExc_ValueError, "packet is too long");  /* as pylibsrtp */
        return -1;
    }
    unsigned char buffer[SINK_BUFFER];
    memcpy(buffer, PyBytes_AS_STRING(data), (size_t)length);
    return sink_send_buffer(self, buffer, length, rtcp);
}

static PyObject *sink_send_method(RtpSink *self, PyObject *data, int rtcp)
{
    int sent = sink_send(self, data, rtcp);
    if (sent < 0)
        return NULL;
    return PyBool_FromLong(sent);
}

static PyObject *sink_send_rtp(RtpSink *self, PyObject *data)
{
    return sink_send_method(self, data, 0);
}

static PyObject *sink_send_rtcp(RtpSink *self, PyObject *data)
{
    return sink_send_method(self, data, 1);
}

static PyObject *sink_sent(RtpSink *self, void *closure)
{
    (void)closure;
    return PyLong_FromLongLong(self->sent);
}

static PyObject *sink_dropped(RtpSink *self, void *closure)
{
    (void)closure;
    return PyLong_FromLongLong(self->dropped);
}

static PyMethodDef sink_methods[] = {
    {"send", (PyCFunction)sink_send_rtp, METH_O,
     "send(rtp): True when the packet went to the socket, SRTP-protected; False when the "
     "transport is not connected (yet or any more)"},
    {"send_rtcp", (PyCFunction)sink_send_rtcp, METH_O, "send_rtcp(rtcp): as send, SRTCP"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef sink_getset[] = {
    {"sent", (getter)sink_sent, NULL, "packets sent", NULL},
    {"dropped", (getter)sink_dropped, NULL, "packets the socket did not take", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject RtpSinkType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rooms._native.RtpSink",
    .tp_basicsize = sizeof(RtpSink),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "RtpSink(dtls, nominated, connected, make_srtp): a synchronous SRTP send on an "
              "aiortc DTLS transport.",
    .tp_new = sink_new,
    .tp_traverse = (traverseproc)sink_traverse,
    .tp_clear = (inquiry)sink_clear,
    .tp_dealloc = (destructor)sink_dealloc,
    .tp_methods = sink_methods,
    .tp_getset = sink_getset,
};

int sink_add_to(PyObject *module)
{
    if (one == NULL) {
        const char *strings[] = {"_state", "protocol", "remote_addr", "transport", "is_closing",
                                 "_tx_srtp", "_RTCDtlsTransport__tx_bytes",
                                 "_RTCDtlsTransport__tx_packets"};
        PyObject **names[] = {&name_state, &name_protocol, &name_remote_addr, &name_transport,
                              &name_is_closing, &name_tx_srtp, &name_tx_bytes,
                              &name_tx_packets};
        for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
            if ((*names[i] = PyUnicode_InternFromString(strings[i])) == NULL)
                return -1;
        if ((one = PyLong_FromLong(1)) == NULL)
            return -1;
    }
    if (PyType_Ready(&RtpSinkType) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "RtpSink", (PyObject *)&RtpSinkType);
}
