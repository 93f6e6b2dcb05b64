/* StreamStatistics and NackGenerator: aiortc.rtcrtpreceiver's, in C (rooms/passthrough.py 15.).
 * The same rules and the same integers: what a receiver's RTCP loop (receiver reports) and
 * getStats read, and the sequence numbers its NACKs name (tests/rooms/test_native_stats.py).
 */
#include "native.h"
#include <time.h>

static PyObject *name_sequence_number, *name_timestamp;

/* aiortc.utils.uint16_gt: a comes after b, 16-bit. */
static int uint16_gt(long a, long b)
{
    return (a < b && b - a > 0x8000) || (a > b && a - b < 0x8000);
}

/* The packet's sequence number and timestamp: 0, or -1 with an exception. */
static int read_packet(PyObject *packet, long *sequence, long long *timestamp)
{
    PyObject *value = PyObject_GetAttr(packet, name_sequence_number);
    if (value == NULL)
        return -1;
    *sequence = PyLong_AsLong(value);
    Py_DECREF(value);
    if (*sequence == -1 && PyErr_Occurred())
        return -1;
    if (timestamp == NULL)
        return 0;
    value = PyObject_GetAttr(packet, name_timestamp);
    if (value == NULL)
        return -1;
    *timestamp = PyLong_AsLongLong(value);
    Py_DECREF(value);
    return *timestamp == -1 && PyErr_Occurred() ? -1 : 0;
}

static PyObject *optional(int present, long long value)
{
    if (!present)
        Py_RETURN_NONE;
    return PyLong_FromLongLong(value);
}

/* StreamStatistics -------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    long long clockrate;
    int has_base, has_max;
    long base_seq, max_seq;
    long long cycles, packets_received;
    long long jitter_q4;
    int has_last;
    long long last_arrival, last_timestamp;
    long long expected_prior, received_prior;
} Statistics;

static PyObject *statistics_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"clockrate", NULL};
    long long clockrate;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "L", names, &clockrate))
        return NULL;
    Statistics *self = (Statistics *)type->tp_alloc(type, 0);
    if (self != NULL)
        self->clockrate = clockrate;
    return (PyObject *)self;
}

/* time.time(), as Python computes it. */
static double unix_time(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long ns = (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
    return (double)ns / 1e9;
}

/* add() on a packet's numbers, received at ``now`` (Unix seconds): 0. */
int statistics_add(PyObject *statistics, long sequence, long long timestamp, double now)
{
    Statistics *self = (Statistics *)statistics;
    int in_order = !self->has_max || uint16_gt(sequence, self->max_seq);
    self->packets_received += 1;
    if (!self->has_base) {
        self->has_base = 1;
        self->base_seq = sequence;
    }
    if (in_order) {
        long long arrival = (long long)(now * (double)self->clockrate);
        if (self->has_max && sequence < self->max_seq)
            self->cycles += 1 << 16;
        self->has_max = 1;
        self->max_seq = sequence;
        /* The first packet is always in order: after it there is a last one. */
        if (self->has_last && timestamp != self->last_timestamp
                && self->packets_received > 1) {
            long long diff = llabs((arrival - self->last_arrival)
                                   - (timestamp - self->last_timestamp));
            self->jitter_q4 += diff - ((self->jitter_q4 + 8) >> 4);
        }
        self->has_last = 1;
        self->last_arrival = arrival;
        self->last_timestamp = timestamp;
    }
    return 0;
}

/* add(packet, now=None): count ``packet``; ``now`` (Unix seconds) stands for time.time(). */
static PyObject *statistics_add_method(Statistics *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"packet", "now", NULL};
    PyObject *packet, *now_object = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|O", names, &packet, &now_object))
        return NULL;
    long sequence;
    long long timestamp;
    if (read_packet(packet, &sequence, &timestamp) < 0)
        return NULL;
    double now = now_object == Py_None ? unix_time() : PyFloat_AsDouble(now_object);
    if (now == -1.0 && PyErr_Occurred())
        return NULL;
    statistics_add((PyObject *)self, sequence, timestamp, now);
    Py_RETURN_NONE;
}

static long long statistics_expected(Statistics *self)
{
    return self->cycles + self->max_seq - self->base_seq + 1;
}

static PyObject *statistics_get_base_seq(Statistics *self, void *closure)
{
    (void)closure;
    return optional(self->has_base, self->base_seq);
}

static PyObject *statistics_get_max_seq(Statistics *self, void *closure)
{
    (void)closure;
    return optional(self->has_max, self->max_seq);
}

static PyObject *statistics_get_cycles(Statistics *self, void *closure)
{
    (void)closure;
    return PyLong_FromLongLong(self->cycles);
}

static PyObject *statistics_get_received(Statistics *self, void *closure)
{
    (void)closure;
    return PyLong_FromLongLong(self->packets_received);
}

static PyObject *statistics_get_jitter(Statistics *self, void *closure)
{
    (void)closure;
    return PyLong_FromLongLong(self->jitter_q4 >> 4);
}

static int statistics_started(Statistics *self)
{
    if (self->has_max && self->has_base)
        return 1;
    PyErr_SetString(PyExc_TypeError, "no packet counted yet");
    return 0;
}

static PyObject *statistics_get_expected(Statistics *self, void *closure)
{
    (void)closure;
    if (!statistics_started(self))
        return NULL;
    return PyLong_FromLongLong(statistics_expected(self));
}

/* RTCP's cumulative loss: 24 bits, signed. */
#define PACKETS_LOST_MIN (-(1 << 23))
#define PACKETS_LOST_MAX ((1 << 23) - 1)

static PyObject *statistics_get_lost(Statistics *self, void *closure)
{
    (void)closure;
    if (!statistics_started(self))
        return NULL;
    long long lost = statistics_expected(self) - self->packets_received;
    if (lost < PACKETS_LOST_MIN)
        lost = PACKETS_LOST_MIN;
    if (lost > PACKETS_LOST_MAX)
        lost = PACKETS_LOST_MAX;
    return PyLong_FromLongLong(lost);
}

/* The fraction lost since the last time it was read (each receiver report reads it once). */
static PyObject *statistics_get_fraction_lost(Statistics *self, void *closure)
{
    (void)closure;
    if (!statistics_started(self))
        return NULL;
    long long expected = statistics_expected(self);
    long long expected_interval = expected - self->expected_prior;
    self->expected_prior = expected;
    long long received_interval = self->packets_received - self->received_prior;
    self->received_prior = self->packets_received;
    long long lost_interval = expected_interval - received_interval;
    if (expected_interval == 0 || lost_interval <= 0)
        return PyLong_FromLong(0);
    /* Python's floor division: expected_interval may be negative after a reordering. */
    long long numerator = lost_interval << 8, quotient = numerator / expected_interval;
    if ((numerator % expected_interval != 0) && ((numerator < 0) != (expected_interval < 0)))
        quotient -= 1;
    return PyLong_FromLongLong(quotient);
}

static PyMethodDef statistics_methods[] = {
    {"add", (PyCFunction)(void (*)(void))statistics_add_method, METH_VARARGS | METH_KEYWORDS,
     "add(packet, now=None): count a received packet (now: Unix seconds, else time.time())"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef statistics_getset[] = {
    {"base_seq", (getter)statistics_get_base_seq, NULL, NULL, NULL},
    {"max_seq", (getter)statistics_get_max_seq, NULL, NULL, NULL},
    {"cycles", (getter)statistics_get_cycles, NULL, NULL, NULL},
    {"packets_received", (getter)statistics_get_received, NULL, NULL, NULL},
    {"jitter", (getter)statistics_get_jitter, NULL, NULL, NULL},
    {"packets_expected", (getter)statistics_get_expected, NULL, NULL, NULL},
    {"packets_lost", (getter)statistics_get_lost, NULL, NULL, NULL},
    {"fraction_lost", (getter)statistics_get_fraction_lost, NULL,
     "lost since the last read, in 256ths", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject StatisticsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rooms._native.StreamStatistics",
    .tp_basicsize = sizeof(Statistics),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "StreamStatistics(clockrate): aiortc.rtcrtpreceiver.StreamStatistics in C.",
    .tp_new = statistics_new,
    .tp_methods = statistics_methods,
    .tp_getset = statistics_getset,
};

/* NackGenerator ----------------------------------------------------------------------------- */

/* aiortc.rtp.RTP_HISTORY_SIZE: how far behind the newest a missing packet is still asked for. */
#define RTP_HISTORY_SIZE 128

typedef struct {
    PyObject_HEAD
    int has_max;
    long max_seq;
    PyObject *missing;  /* a set of ints, aiortc's: its RTCP reads it */
} Nacks;

static PyObject *nacks_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    if (!PyArg_ParseTuple(args, ":NackGenerator") || (kwargs && PyDict_GET_SIZE(kwargs))) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "NackGenerator() takes no arguments");
        return NULL;
    }
    Nacks *self = (Nacks *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->missing = PySet_New(NULL);
    if (self->missing == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void nacks_dealloc(Nacks *self)
{
    Py_XDECREF(self->missing);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int set_change(PyObject *set, long sequence, int add)
{
    PyObject *key = PyLong_FromLong(sequence);
    if (key == NULL)
        return -1;
    int result = add ? PySet_Add(set, key) : PySet_Discard(set, key);
    Py_DECREF(key);
    return result < 0 ? -1 : 0;
}

/* Forget the missing packets more than RTP_HISTORY_SIZE behind the newest. */
static int nacks_truncate(Nacks *self)
{
    if (!self->has_max || PySet_GET_SIZE(self->missing) == 0)
        return 0;
    long min_seq = (self->max_seq - RTP_HISTORY_SIZE) & 0xFFFF;
    PyObject *old = PyList_New(0);
    if (old == NULL)
        return -1;
    Py_ssize_t position = 0;
    PyObject *key;
    Py_hash_t hash;
    while (_PySet_NextEntry(self->missing, &position, &key, &hash)) {
        long sequence = PyLong_AsLong(key);
        if (sequence == -1 && PyErr_Occurred())
            break;
        if (uint16_gt(min_seq, sequence) && PyList_Append(old, key) < 0)
            break;
    }
    for (Py_ssize_t i = 0; !PyErr_Occurred() && i < PyList_GET_SIZE(old); i++)
        PySet_Discard(self->missing, PyList_GET_ITEM(old, i));
    Py_DECREF(old);
    return PyErr_Occurred() ? -1 : 0;
}

/* add() on a packet's sequence number: 1 when it shows packets missing before it, 0, or -1
 * with an exception. */
int nacks_add(PyObject *generator, long sequence)
{
    Nacks *self = (Nacks *)generator;
    if (!self->has_max) {
        self->has_max = 1;
        self->max_seq = sequence;
        return 0;
    }
    int missed = 0;
    if (uint16_gt(sequence, self->max_seq)) {
        long next = (self->max_seq + 1) & 0xFFFF;
        while (uint16_gt(sequence, next)) {
            if (set_change(self->missing, next, 1) < 0)
                return -1;
            missed = 1;
            next = (next + 1) & 0xFFFF;
        }
        self->max_seq = sequence;
    } else if (PySet_GET_SIZE(self->missing) && set_change(self->missing, sequence, 0) < 0) {
        return -1;
    }
    if (nacks_truncate(self) < 0)
        return -1;
    return missed;
}

/* add(packet): mark it received; True when it shows packets missing before it. */
static PyObject *nacks_add_method(Nacks *self, PyObject *packet)
{
    long sequence;
    if (read_packet(packet, &sequence, NULL) < 0)
        return NULL;
    int missed = nacks_add((PyObject *)self, sequence);
    if (missed < 0)
        return NULL;
    return PyBool_FromLong(missed);
}

static PyObject *nacks_truncate_method(Nacks *self, PyObject *unused)
{
    (void)unused;
    if (nacks_truncate(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *nacks_get_missing(Nacks *self, void *closure)
{
    (void)closure;
    return Py_NewRef(self->missing);
}

static PyObject *nacks_get_max_seq(Nacks *self, void *closure)
{
    (void)closure;
    return optional(self->has_max, self->max_seq);
}

static PyMethodDef nacks_methods[] = {
    {"add", (PyCFunction)nacks_add_method, METH_O,
     "add(packet): mark it received; True when packets before it are missing"},
    {"truncate", (PyCFunction)nacks_truncate_method, METH_NOARGS,
     "truncate(): forget missing packets too far behind"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef nacks_getset[] = {
    {"missing", (getter)nacks_get_missing, NULL, "the sequence numbers missing (a set)", NULL},
    {"max_seq", (getter)nacks_get_max_seq, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject NacksType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rooms._native.NackGenerator",
    .tp_basicsize = sizeof(Nacks),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "NackGenerator(): aiortc.rtcrtpreceiver.NackGenerator in C.",
    .tp_new = nacks_new,
    .tp_dealloc = (destructor)nacks_dealloc,
    .tp_methods = nacks_methods,
    .tp_getset = nacks_getset,
};

int stats_add_to(PyObject *module)
{
    if (name_timestamp == NULL) {
        name_sequence_number = PyUnicode_InternFromString("sequence_number");
        name_timestamp = PyUnicode_InternFromString("timestamp");
        if (name_sequence_number == NULL || name_timestamp == NULL)
            return -1;
    }
    if (PyType_Ready(&StatisticsType) < 0 || PyType_Ready(&NacksType) < 0
            || PyModule_AddObjectRef(module, "StreamStatistics", (PyObject *)&StatisticsType) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "NackGenerator", (PyObject *)&NacksType);
}
