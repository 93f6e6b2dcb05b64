/* Srtp: a pylibsrtp session's protect and unprotect without pylibsrtp's Python wrapper (a
 * buffer copy in and out through cffi, per packet): libsrtp's own functions, called through
 * the addresses pylibsrtp's cffi library gives, on the libsrtp session pylibsrtp made
 * (rooms/passthrough.py 16.). The same limits, results and errors as pylibsrtp's
 * (tests/rooms/test_native_srtp.py).
 */
#include "native.h"

/* SRTP through pylibsrtp's libsrtp -------------------------------------------------------- */

/* pylibsrtp.Error and pylibsrtp.ERRORS (its message for each libsrtp status). */
static PyObject *srtp_error_type = NULL;
static PyObject *srtp_error_messages = NULL;

/* libsrtp 2's srtp_protect, srtp_unprotect and srtp_protect_rtcp: (session, buffer, length). */
typedef int (*srtp_function)(void *, void *, int *);

/* pylibsrtp's limits: a 1,500-byte buffer, less the longest trailer protecting may add. */
#define SRTP_BUFFER SINK_BUFFER
#define SRTP_MAX_TRAILER_LEN SRTP_MAX_TRAILER
#define SRTP_MAX_SRTCP_TRAILER_LEN SRTCP_MAX_TRAILER

typedef struct {
    PyObject_HEAD
    PyObject *owner;  /* the pylibsrtp.Session whose libsrtp session this is: kept alive */
    void *session;
    srtp_function protect, unprotect, protect_rtcp, unprotect_rtcp;
} Srtp;

static PyObject *srtp_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"owner", "session", "protect", "unprotect", "protect_rtcp",
                            "unprotect_rtcp", NULL};
    PyObject *owner;
    unsigned long long session, protect, unprotect, protect_rtcp, unprotect_rtcp;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OKKKKK", names, &owner, &session, &protect,
                                     &unprotect, &protect_rtcp, &unprotect_rtcp))
        return NULL;
    if (!session || !protect || !unprotect || !protect_rtcp || !unprotect_rtcp) {
        PyErr_SetString(PyExc_ValueError, "Srtp: a null session or function");
        return NULL;
    }
    Srtp *self = (Srtp *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->owner = Py_NewRef(owner);
    self->session = (void *)(uintptr_t)session;
    self->protect = (srtp_function)(uintptr_t)protect;
    self->unprotect = (srtp_function)(uintptr_t)unprotect;
    self->protect_rtcp = (srtp_function)(uintptr_t)protect_rtcp;
    self->unprotect_rtcp = (srtp_function)(uintptr_t)unprotect_rtcp;
    return (PyObject *)self;
}

static void srtp_dealloc(Srtp *self)
{
    Py_XDECREF(self->owner);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* pylibsrtp.Error with pylibsrtp's message for a libsrtp status. */
static void set_srtp_error(int status)
{
    PyObject *message = PySequence_GetItem(srtp_error_messages, status);
    if (message == NULL) {
        PyErr_Clear();
        PyErr_Format(srtp_error_type, "libsrtp status %d", status);
    } else {
        PyErr_SetObject(srtp_error_type, message);
        Py_DECREF(message);
    }
}

static PyObject *srtp_process(Srtp *self, PyObject *data, srtp_function function,
                              Py_ssize_t trailer)
{
    if (!PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "packet must be bytes");
        return NULL;
    }
    Py_ssize_t length = PyBytes_GET_SIZE(data);
    if (length > SRTP_BUFFER - trailer) {
        PyErr_SetString(PyExc_ValueError, "packet is too long");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, length + trailer);
    if (out == NULL)
        return NULL;
    memcpy(PyBytes_AS_STRING(out), PyBytes_AS_STRING(data), (size_t)length);
    int out_length = (int)length;
    int status = function(self->session, PyBytes_AS_STRING(out), &out_length);
    if (status != 0) {
        Py_DECREF(out);
        set_srtp_error(status);
        return NULL;
    }
    if (out_length != length + trailer && _PyBytes_Resize(&out, out_length) < 0)
        return NULL;
    return out;
}

static PyTypeObject SrtpType;

PyObject *srtp_unprotect_bytes(PyObject *srtp, PyObject *data, int rtcp)
{
    if (!PyObject_TypeCheck(srtp, &SrtpType)) {
        PyErr_SetString(PyExc_TypeError, "not a rooms._native.Srtp");
        return NULL;
    }
    Srtp *self = (Srtp *)srtp;
    return srtp_process(self, data, rtcp ? self->unprotect_rtcp : self->unprotect, 0);
}

int srtp_protect_buffer(PyObject *srtp, unsigned char *buffer, int *length, int rtcp)
{
    if (!PyObject_TypeCheck(srtp, &SrtpType)) {
        PyErr_SetString(PyExc_TypeError, "not a rooms._native.Srtp");
        return -1;
    }
    Srtp *self = (Srtp *)srtp;
    if (*length > SRTP_BUFFER - (rtcp ? SRTP_MAX_SRTCP_TRAILER_LEN : SRTP_MAX_TRAILER_LEN)) {
        PyErr_SetString(PyExc_ValueError, "packet is too long");
        return -1;
    }
    int status = (rtcp ? self->protect_rtcp : self->protect)(self->session, buffer, length);
    if (status != 0) {
        set_srtp_error(status);
        return -1;
    }
    return 0;
}

static PyObject *srtp_protect(Srtp *self, PyObject *data)
{
    return srtp_process(self, data, self->protect, SRTP_MAX_TRAILER_LEN);
}

static PyObject *srtp_unprotect(Srtp *self, PyObject *data)
{
    return srtp_process(self, data, self->unprotect, 0);
}

static PyObject *srtp_protect_rtcp(Srtp *self, PyObject *data)
{
    return srtp_process(self, data, self->protect_rtcp, SRTP_MAX_SRTCP_TRAILER_LEN);
}

static PyObject *srtp_unprotect_rtcp(Srtp *self, PyObject *data)
{
    return srtp_process(self, data, self->unprotect_rtcp, 0);
}

static PyMethodDef srtp_methods[] = {
    {"protect", (PyCFunction)srtp_protect, METH_O, "protect(rtp): SRTP, as pylibsrtp's."},
    {"unprotect", (PyCFunction)srtp_unprotect, METH_O, "unprotect(srtp): RTP, as pylibsrtp's."},
    {"protect_rtcp", (PyCFunction)srtp_protect_rtcp, METH_O,
     "protect_rtcp(rtcp): SRTCP, as pylibsrtp's."},
    {"unprotect_rtcp", (PyCFunction)srtp_unprotect_rtcp, METH_O,
     "unprotect_rtcp(srtcp): RTCP, as pylibsrtp's."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SrtpType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rooms._native.Srtp",
    .tp_basicsize = sizeof(Srtp),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Srtp(owner, session, protect, unprotect, protect_rtcp, unprotect_rtcp): a "
              "pylibsrtp session's "
              "protect and unprotect, called in C (addresses from pylibsrtp's cffi library).",
    .tp_new = srtp_new,
    .tp_dealloc = (destructor)srtp_dealloc,
    .tp_methods = srtp_methods,
};

int srtp_add_to(PyObject *module)
{
    if (PyType_Ready(&SrtpType) < 0)
        return -1;
    if (srtp_error_type == NULL) {
        PyObject *pylibsrtp = PyImport_ImportModule("pylibsrtp");
        if (pylibsrtp == NULL)
            return -1;
        srtp_error_type = PyObject_GetAttrString(pylibsrtp, "Error");
        srtp_error_messages = PyObject_GetAttrString(pylibsrtp, "ERRORS");
        Py_DECREF(pylibsrtp);
        if (srtp_error_type == NULL || srtp_error_messages == NULL)
            return -1;
    }
    return PyModule_AddObjectRef(module, "Srtp", (PyObject *)&SrtpType);
}
