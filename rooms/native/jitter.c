/* JitterBuffer: aiortc.jitterbuffer.JitterBuffer, which reassembles the recording's frames
 * from each receiver's packets (once per track), and vp8_depayload, aiortc.codecs.vpx's, which
 * strips each VP8 packet's payload descriptor first; tests/rooms/test_native_jitter.py runs
 * both against aiortc's on generated packets (rooms/passthrough.py 15.).
 */
#include "native.h"

/* Jitter buffer ---------------------------------------------------------------------------- */

/* aiortc.jitterbuffer.JitterFrame: what add() hands out, as aiortc's own buffer does. */
static PyObject *jitter_frame_type = NULL, *empty_tuple = NULL, *name_frame_data = NULL;
static PyObject *name_sequence_number = NULL, *name_timestamp = NULL, *name_data = NULL;

#define MAX_MISORDER 100

typedef struct {
    PyObject_HEAD
    Py_ssize_t capacity;
    Py_ssize_t prefetch;
    int is_video;
    int has_origin;
    Py_ssize_t origin;
    /* Each slot's depacketized payload (a bytes object, owned), or NULL for an empty slot. */
    PyObject **data;
    int64_t *timestamps;
} JitterBuffer;

static void jb_clear(JitterBuffer *self, Py_ssize_t pos)
{
    Py_CLEAR(self->data[pos]);
}

static void jb_remove(JitterBuffer *self, Py_ssize_t count)
{
    for (Py_ssize_t i = 0; i < count; i++) {
        jb_clear(self, self->origin % self->capacity);
        self->origin = (self->origin + 1) & 0xFFFF;
    }
}

static int jb_smart_remove(JitterBuffer *self, Py_ssize_t count)
{
    int has_timestamp = 0;
    int64_t timestamp = 0;
    for (Py_ssize_t i = 0; i < self->capacity; i++) {
        Py_ssize_t pos = self->origin % self->capacity;
        if (self->data[pos] != NULL) {
            if (i >= count && (!has_timestamp || timestamp != self->timestamps[pos]))
                break;
            timestamp = self->timestamps[pos];
            has_timestamp = 1;
        }
        jb_clear(self, pos);
        self->origin = (self->origin + 1) & 0xFFFF;
        if (i == self->capacity - 1)
            return 1;
    }
    return 0;
}

/* The slots from ``first`` to ``end`` (counted from the origin) joined: one frame's data. */
static PyObject *jb_frame(JitterBuffer *self, Py_ssize_t first, Py_ssize_t end, int64_t timestamp)
{
    Py_ssize_t size = 0;
    for (Py_ssize_t count = first; count < end; count++)
        size += PyBytes_GET_SIZE(self->data[(self->origin + count) % self->capacity]);
    PyObject *data = PyBytes_FromStringAndSize(NULL, size);
    if (data == NULL)
        return NULL;
    char *out = PyBytes_AS_STRING(data);
    for (Py_ssize_t count = first; count < end; count++) {
        PyObject *part = self->data[(self->origin + count) % self->capacity];
        memcpy(out, PyBytes_AS_STRING(part), (size_t)PyBytes_GET_SIZE(part));
        out += PyBytes_GET_SIZE(part);
    }
    /* aiortc's JitterFrame, made as its __init__ makes it (two attributes), without calling
     * that Python function for every frame. */
    PyTypeObject *type = (PyTypeObject *)jitter_frame_type;
    PyObject *frame = type->tp_new(type, empty_tuple, NULL);
    PyObject *stamp = frame == NULL ? NULL : PyLong_FromLongLong(timestamp);
    if (stamp == NULL || PyObject_SetAttr(frame, name_frame_data, data) < 0
            || PyObject_SetAttr(frame, name_timestamp, stamp) < 0)
        Py_CLEAR(frame);
    Py_XDECREF(stamp);
    Py_DECREF(data);
    return frame;
}

/* 0 and *frame (a new reference, or NULL for none yet), or -1 with an exception. */
static int jb_remove_frame(JitterBuffer *self, PyObject **frame)
{
    Py_ssize_t frames = 0, first = 0, remove = 0;
    int has_timestamp = 0;
    int64_t timestamp = 0;
    *frame = NULL;
    for (Py_ssize_t count = 0; count < self->capacity; count++) {
        Py_ssize_t pos = (self->origin + count) % self->capacity;
        if (self->data[pos] == NULL)
            break;
        if (!has_timestamp) {
            timestamp = self->timestamps[pos];
            has_timestamp = 1;
        } else if (self->timestamps[pos] != timestamp) {
            /* A complete frame: only the first one is kept. */
            if (*frame == NULL) {
                *frame = jb_frame(self, first, count, timestamp);
                if (*frame == NULL)
                    return -1;
                remove = count;
            }
            frames += 1;
            if (frames >= self->prefetch) {
                jb_remove(self, remove);
                return 0;
            }
            first = count;
            timestamp = self->timestamps[pos];
        }
    }
    Py_CLEAR(*frame);
    return 0;
}

static PyObject *jb_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"capacity", "prefetch", "is_video", NULL};
    Py_ssize_t capacity, prefetch = 0;
    int is_video = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "n|np", names, &capacity, &prefetch,
                                     &is_video))
        return NULL;
    if (capacity <= 0 || capacity > 0x10000 || (capacity & (capacity - 1)) != 0) {
        PyErr_SetString(PyExc_ValueError, "capacity must be a power of 2, at most 65536");
        return NULL;
    }
    JitterBuffer *self = (JitterBuffer *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->capacity = capacity;
    self->prefetch = prefetch;
    self->is_video = is_video;
    self->has_origin = 0;
    self->origin = 0;
    self->data = PyMem_Calloc((size_t)capacity, sizeof(PyObject *));
    self->timestamps = PyMem_Calloc((size_t)capacity, sizeof(int64_t));
    if (self->data == NULL || self->timestamps == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    return (PyObject *)self;
}

static void jb_dealloc(JitterBuffer *self)
{
    if (self->data != NULL) {
        for (Py_ssize_t i = 0; i < self->capacity; i++)
            Py_XDECREF(self->data[i]);
        PyMem_Free(self->data);
    }
    PyMem_Free(self->timestamps);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The packet attributes add() reads, as interned strings made once (jitter_add_to): a name
 * given as a C string would be made into a new str object on every packet. */

static int read_int(PyObject *object, PyObject *name, int64_t low, int64_t high,
                    int64_t *value)
{
    PyObject *attribute = PyObject_GetAttr(object, name);
    if (attribute == NULL)
        return -1;
    *value = PyLong_AsLongLong(attribute);
    Py_DECREF(attribute);
    if (*value == -1 && PyErr_Occurred())
        return -1;
    if (*value < low || *value > high) {
        PyErr_Format(PyExc_ValueError, "packet.%U out of range", name);
        return -1;
    }
    return 0;
}

/* aiortc's JitterBuffer.add on a packet's numbers and depacketized ``data`` (a reference is
 * taken): 0 with *pli and *frame (a new reference, or NULL for none yet), or -1 with an
 * exception. inbound.c calls it for each packet. */
int jitter_add(PyObject *buffer, int64_t sequence, int64_t timestamp, PyObject *data, int *pli,
               PyObject **frame)
{
    JitterBuffer *self = (JitterBuffer *)buffer;
    *pli = 0;
    *frame = NULL;
    if (!PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "packet._data must be bytes");
        return -1;
    }
    Py_ssize_t delta = 0, misorder = 0;
    if (!self->has_origin) {
        self->origin = (Py_ssize_t)sequence;
        self->has_origin = 1;
    } else {
        delta = (Py_ssize_t)((sequence - self->origin) & 0xFFFF);
        misorder = (Py_ssize_t)((self->origin - sequence) & 0xFFFF);
    }
    if (misorder < delta) {
        if (misorder >= MAX_MISORDER) {
            jb_remove(self, self->capacity);
            self->origin = (Py_ssize_t)sequence;
            delta = misorder = 0;
            if (self->is_video)
                *pli = 1;
        } else {
            return 0;
        }
    }
    if (delta >= self->capacity) {
        /* Remove just enough frames to fit the packet. */
        if (jb_smart_remove(self, delta - self->capacity + 1))
            self->origin = (Py_ssize_t)sequence;
        if (self->is_video)
            *pli = 1;
    }
    Py_ssize_t pos = (Py_ssize_t)sequence % self->capacity;
    Py_XSETREF(self->data[pos], Py_NewRef(data));
    self->timestamps[pos] = timestamp;
    return jb_remove_frame(self, frame);
}

/* add(packet): (pli_flag, JitterFrame or None), as aiortc's JitterBuffer.add; the packet's
 * depacketized payload is its ``_data``. */
static PyObject *jb_add(JitterBuffer *self, PyObject *packet)
{
    int64_t sequence, timestamp;
    if (read_int(packet, name_sequence_number, 0, 0xFFFF, &sequence) < 0
            || read_int(packet, name_timestamp, 0, 0xFFFFFFFF, &timestamp) < 0)
        return NULL;
    PyObject *data = PyObject_GetAttr(packet, name_data);
    if (data == NULL)
        return NULL;
    int pli;
    PyObject *frame;
    int added = jitter_add((PyObject *)self, sequence, timestamp, data, &pli, &frame);
    Py_DECREF(data);
    if (added < 0)
        return NULL;
    return Py_BuildValue("(ON)", pli ? Py_True : Py_False,
                         frame != NULL ? frame : Py_NewRef(Py_None));
}

static PyMethodDef jb_methods[] = {
    {"add", (PyCFunction)jb_add, METH_O,
     "add(packet): (pli_flag, JitterFrame or None), as aiortc's JitterBuffer.add."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject JitterBufferType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rooms._native.JitterBuffer",
    .tp_basicsize = sizeof(JitterBuffer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "aiortc's JitterBuffer(capacity, prefetch=0, is_video=False), in C.",
    .tp_new = jb_new,
    .tp_dealloc = (destructor)jb_dealloc,
    .tp_methods = jb_methods,
};

/* VP8 depacketizing ------------------------------------------------------------------------ */

/* vp8_depayload(payload): the payload without its VP8 payload descriptor (RFC 7741), with the
 * ValueError aiortc.codecs.vpx.vp8_depayload raises for a truncated one. */
static PyObject *vp8_depayload(PyObject *module, PyObject *payload)
{
    (void)module;
    if (!PyBytes_Check(payload)) {
        PyErr_SetString(PyExc_TypeError, "vp8_depayload() takes bytes");
        return NULL;
    }
    return vp8_depayload_bytes((const unsigned char *)PyBytes_AS_STRING(payload),
                               PyBytes_GET_SIZE(payload));
}

PyObject *vp8_depayload_bytes(const unsigned char *data, Py_ssize_t length)
{
    Py_ssize_t pos = 1;
    if (length < 1) {
        PyErr_SetString(PyExc_ValueError, "VPX descriptor is too short");
        return NULL;
    }
    if (data[0] & 0x80) {
        if (length < pos + 1) {
            PyErr_SetString(PyExc_ValueError, "VPX descriptor has truncated extended bits");
            return NULL;
        }
        unsigned char extension = data[pos++];
        if (extension & 0x80) {  /* I: picture id */
            if (length < pos + 1) {
                PyErr_SetString(PyExc_ValueError, "VPX descriptor has truncated PictureID");
                return NULL;
            }
            if (data[pos] & 0x80) {
                if (length < pos + 2) {
                    PyErr_SetString(PyExc_ValueError,
                                    "VPX descriptor has truncated long PictureID");
                    return NULL;
                }
                pos += 2;
            } else {
                pos += 1;
            }
        }
        if (extension & 0x40) {  /* L: TL0PICIDX */
            if (length < pos + 1) {
                PyErr_SetString(PyExc_ValueError, "VPX descriptor has truncated TL0PICIDX");
                return NULL;
            }
            pos += 1;
        }
        if (extension & 0x30) {  /* T or K */
            if (length < pos + 1) {
                PyErr_SetString(PyExc_ValueError, "VPX descriptor has truncated T/K");
                return NULL;
            }
            pos += 1;
        }
    }
    return PyBytes_FromStringAndSize((const char *)data + pos, length - pos);
}

static PyMethodDef jitter_functions[] = {
    {"vp8_depayload", vp8_depayload, METH_O,
     "vp8_depayload(payload): the payload without its VP8 payload descriptor."},
    {NULL, NULL, 0, NULL},
};

int jitter_add_to(PyObject *module)
{
    if (PyType_Ready(&JitterBufferType) < 0)
        return -1;
    if (name_sequence_number == NULL) {
        name_sequence_number = PyUnicode_InternFromString("sequence_number");
        name_timestamp = PyUnicode_InternFromString("timestamp");
        name_data = PyUnicode_InternFromString("_data");
        if (name_sequence_number == NULL || name_timestamp == NULL || name_data == NULL)
            return -1;
    }
    if (jitter_frame_type == NULL) {
        empty_tuple = PyTuple_New(0);
        name_frame_data = PyUnicode_InternFromString("data");
        if (empty_tuple == NULL || name_frame_data == NULL)
            return -1;
        PyObject *jitterbuffer = PyImport_ImportModule("aiortc.jitterbuffer");
        if (jitterbuffer == NULL)
            return -1;
        jitter_frame_type = PyObject_GetAttrString(jitterbuffer, "JitterFrame");
        Py_DECREF(jitterbuffer);
        if (jitter_frame_type == NULL)
            return -1;
        if (!PyType_Check(jitter_frame_type)) {
            PyErr_SetString(PyExc_TypeError, "aiortc.jitterbuffer.JitterFrame is not a class");
            return -1;
        }
    }
    if (PyModule_AddFunctions(module, jitter_functions) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "JitterBuffer", (PyObject *)&JitterBufferType);
}
