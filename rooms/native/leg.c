/* LegWriter: what rooms/rtp_forward.py's RtpLeg does to each packet it forwards, rewriting its
 * sequence number and timestamp, writing its header and extensions for the subscriber, and
 * keeping it to answer NACKs (tests/rooms/test_rtp_forward.py); and ``forward``, which hands a
 * publisher's packet to every leg: each one rewritten, sent on the subscriber's RtpSink and
 * counted for the sender's reports (read through rooms/passthrough.py 10.), with no Python per
 * leg.
 */
#include "native.h"

/* One subscriber's leg: rewriting and writing RTP packets ---------------------------------- */

/* Rewritten packets kept per leg to answer a subscriber's NACK: about 2 s of 640x480 video. */
#define RTP_CACHE 512
/* How far behind the newest packet sent a late packet may still go out: libsrtp refuses to
 * protect an index older than its replay window (128), and a subscriber has given up by then. */
#define REORDER_WINDOW 64
/* Sources a leg remembers having left: a late retransmission of one must not switch back. */
#define RETIRED_SOURCES 8
/* Seconds from the NTP epoch (1900) to the Unix epoch (1970). */
#define NTP_OFFSET 2208988800.0
/* The longest extension block: 0xBEDE and length, mid (1 + 16), abs-send-time (4), audio
 * level (2), padding. */
#define MAX_EXTENSIONS 28

typedef struct {
    int used;
    uint16_t sequence;
    int marker;
    uint32_t timestamp;
    unsigned char extensions[MAX_EXTENSIONS];
    int extensions_length;
    PyObject *payload;  /* owned */
} Sent;

typedef struct {
    PyObject_HEAD
    /* Rewriting (see rewrite below). */
    int has_source;
    uint32_t source;
    uint32_t retired[RETIRED_SOURCES];
    int retired_count;
    uint16_t sequence_offset;
    uint32_t timestamp_offset;
    uint16_t next_sequence;
    uint32_t next_timestamp;
    int has_max;
    uint16_t max_sequence;
    uint16_t source_start;
    uint32_t last_timestamp;
    double last_time;
    /* Writing: what the subscriber negotiated (configure). */
    int configured;
    int payload_type;
    uint32_t ssrc;
    int rtx_payload_type;  /* -1: no RTX */
    uint32_t rtx_ssrc;
    uint16_t rtx_sequence;
    unsigned char mid[17];
    int mid_length;
    int abs_send_time_header;  /* -1: not negotiated */
    int audio_level_header;    /* -1: not negotiated */
    Sent *cache;
    long long drops;
    /* Forwarding (attach): where the leg sends, its codec's lower-case MIME type and clock
     * rate. ``gate`` (a callable or NULL) sees each payload until it answers true (a video leg
     * waiting for a keyframe). */
    int live;
    PyObject *sink, *mime, *gate, *publisher_codec;
    double clock_rate;
    /* What its sender's reports say (rooms/passthrough.py 10.): packets and payload bytes
     * sent, and the NTP and RTP times of the last. */
    long long packets, octets;
    uint64_t ntp_timestamp;
    uint32_t rtp_timestamp;
} LegWriter;

static PyTypeObject LegWriterType;

static PyObject *name_ssrc, *name_sequence_number, *name_timestamp, *name_marker, *name_payload,
    *name_extensions, *name_audio_level, *name_mime_type, *name_lower;

/* True when 16-bit sequence number a comes after b (RFC 1982 arithmetic). */
static int newer16(uint16_t a, uint16_t b)
{
    return a != b && (uint16_t)(a - b) < 0x8000;
}

/* The output (sequence, timestamp) of an input packet; 0 to drop it (a source the leg has
 * left, from before the source's first packet here, or more than REORDER_WINDOW too late).
 * When the input source changes (a track replaced, a screen share restarted) the offsets are
 * chosen again so the output goes on from where it was, its timestamp advanced by the
 * wall-clock time in between. */
static int leg_rewrite(LegWriter *self, uint32_t source, uint16_t sequence, uint32_t timestamp,
                       double now, double clock_rate, uint16_t *out_sequence,
                       uint32_t *out_timestamp)
{
    if (!self->has_source || source != self->source) {
        for (int i = 0; i < self->retired_count; i++)
            if (self->retired[i] == source)
                return 0;
        if (self->has_source) {
            if (self->retired_count == RETIRED_SOURCES) {
                memmove(self->retired, self->retired + 1,
                        (RETIRED_SOURCES - 1) * sizeof(uint32_t));
                self->retired_count -= 1;
            }
            self->retired[self->retired_count++] = self->source;
            self->next_sequence = (uint16_t)(self->max_sequence + 1);
            double elapsed = (now - self->last_time) * clock_rate;
            int64_t ticks = (int64_t)elapsed;
            if (ticks < 1)
                ticks = 1;
            self->next_timestamp = (uint32_t)(self->last_timestamp + (uint64_t)ticks);
        }
        self->has_source = 1;
        self->source = source;
        self->source_start = self->next_sequence;
        self->sequence_offset = (uint16_t)(self->next_sequence - sequence);
        self->timestamp_offset = self->next_timestamp - timestamp;
    }
    uint16_t rewritten = (uint16_t)(sequence + self->sequence_offset);
    if (newer16(self->source_start, rewritten))
        return 0;
    uint32_t rewritten_timestamp = timestamp + self->timestamp_offset;
    if (!self->has_max || newer16(rewritten, self->max_sequence)) {
        self->has_max = 1;
        self->max_sequence = rewritten;
        self->last_timestamp = rewritten_timestamp;
        self->last_time = now;
    } else if ((uint16_t)(self->max_sequence - rewritten) > REORDER_WINDOW) {
        return 0;
    }
    *out_sequence = rewritten;
    *out_timestamp = rewritten_timestamp;
    return 1;
}

/* The one-byte-form extension block (RFC 8285) of a packet sent at ``wall`` (Unix seconds):
 * mid, abs-send-time, and the audio level when there is one; its length, 0 for none. */
static int leg_extensions(const LegWriter *self, double wall, int has_level, int voice,
                          int level, unsigned char *out)
{
    int length = 4;
    memcpy(out + length, self->mid, (size_t)self->mid_length);
    length += self->mid_length;
    if (self->abs_send_time_header >= 0) {
        /* 6.18 fixed-point seconds, the low 24 bits. */
        uint32_t abs_send_time = (uint32_t)((int64_t)((wall + NTP_OFFSET) * (1 << 18))
                                            & 0xFFFFFF);
        out[length++] = (unsigned char)self->abs_send_time_header;
        out[length++] = (unsigned char)(abs_send_time >> 16);
        out[length++] = (unsigned char)(abs_send_time >> 8);
        out[length++] = (unsigned char)abs_send_time;
    }
    if (has_level && self->audio_level_header >= 0) {
        out[length++] = (unsigned char)self->audio_level_header;
        out[length++] = (unsigned char)((voice ? 0x80 : 0) | (level & 0x7F));
    }
    if (length == 4)
        return 0;
    while (length % 4)
        out[length++] = 0;
    out[0] = 0xBE;
    out[1] = 0xDE;
    out[2] = (unsigned char)(((length - 4) / 4) >> 8);
    out[3] = (unsigned char)((length - 4) / 4);
    return length;
}

/* An RTP packet (RFC 3550, no CSRC) written at ``out``: the header, the extension block and
 * ``prefix`` (RTX's original sequence number) and ``payload``; its length. */
static Py_ssize_t rtp_fill(unsigned char *out, int payload_type, int marker, uint16_t sequence,
                           uint32_t timestamp, uint32_t ssrc, const unsigned char *extensions,
                           int extensions_length, const unsigned char *prefix,
                           int prefix_length, PyObject *payload)
{
    Py_ssize_t payload_length = PyBytes_GET_SIZE(payload);
    out[0] = extensions_length ? 0x90 : 0x80;
    out[1] = (unsigned char)((marker ? 0x80 : 0) | (payload_type & 0x7F));
    out[2] = (unsigned char)(sequence >> 8);
    out[3] = (unsigned char)sequence;
    out[4] = (unsigned char)(timestamp >> 24);
    out[5] = (unsigned char)(timestamp >> 16);
    out[6] = (unsigned char)(timestamp >> 8);
    out[7] = (unsigned char)timestamp;
    out[8] = (unsigned char)(ssrc >> 24);
    out[9] = (unsigned char)(ssrc >> 16);
    out[10] = (unsigned char)(ssrc >> 8);
    out[11] = (unsigned char)ssrc;
    memcpy(out + 12, extensions, (size_t)extensions_length);
    memcpy(out + 12 + extensions_length, prefix, (size_t)prefix_length);
    memcpy(out + 12 + extensions_length + prefix_length, PyBytes_AS_STRING(payload),
           (size_t)payload_length);
    return 12 + extensions_length + prefix_length + payload_length;
}

/* rtp_fill's packet as bytes. */
static PyObject *rtp_packet(int payload_type, int marker, uint16_t sequence, uint32_t timestamp,
                            uint32_t ssrc, const unsigned char *extensions, int extensions_length,
                            const unsigned char *prefix, int prefix_length, PyObject *payload)
{
    PyObject *data = PyBytes_FromStringAndSize(
        NULL, 12 + extensions_length + prefix_length + PyBytes_GET_SIZE(payload));
    if (data != NULL)
        rtp_fill((unsigned char *)PyBytes_AS_STRING(data), payload_type, marker, sequence,
                 timestamp, ssrc, extensions, extensions_length, prefix, prefix_length, payload);
    return data;
}

static PyObject *leg_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"first_sequence", "first_timestamp", "first_rtx_sequence", NULL};
    unsigned long first_sequence, first_timestamp, first_rtx_sequence;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "kkk", names, &first_sequence,
                                     &first_timestamp, &first_rtx_sequence))
        return NULL;
    LegWriter *self = (LegWriter *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->next_sequence = (uint16_t)first_sequence;
    self->next_timestamp = (uint32_t)first_timestamp;
    self->source_start = self->next_sequence;
    self->rtx_sequence = (uint16_t)first_rtx_sequence;
    self->rtx_payload_type = self->abs_send_time_header = self->audio_level_header = -1;
    self->cache = PyMem_Calloc(RTP_CACHE, sizeof(Sent));
    if (self->cache == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    return (PyObject *)self;
}

static void leg_clear_cache(LegWriter *self)
{
    for (int i = 0; i < RTP_CACHE; i++) {
        Py_CLEAR(self->cache[i].payload);
        self->cache[i].used = 0;
    }
}

static int leg_traverse(LegWriter *self, visitproc visit, void *arg)
{
    Py_VISIT(self->sink);
    Py_VISIT(self->mime);
    Py_VISIT(self->gate);
    Py_VISIT(self->publisher_codec);
    return 0;
}

static int leg_detach_all(LegWriter *self)
{
    self->live = 0;
    Py_CLEAR(self->sink);
    Py_CLEAR(self->mime);
    Py_CLEAR(self->gate);
    Py_CLEAR(self->publisher_codec);
    return 0;
}

static void leg_dealloc(LegWriter *self)
{
    PyObject_GC_UnTrack(self);
    leg_detach_all(self);
    if (self->cache != NULL) {
        leg_clear_cache(self);
        PyMem_Free(self->cache);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* configure(payload_type, ssrc, rtx_payload_type, rtx_ssrc, mid, abs_send_time_header,
 * audio_level_header): what the subscriber negotiated, again at each renegotiation (the
 * numbering goes on). ``mid`` is the mid's whole element (b"" for none), the headers the
 * elements' first bytes (-1 for none), rtx_payload_type -1 for no RTX. */
static PyObject *leg_configure(LegWriter *self, PyObject *args)
{
    int payload_type, rtx_payload_type, abs_send_time_header, audio_level_header;
    unsigned long ssrc, rtx_ssrc;
    const char *mid;
    Py_ssize_t mid_length;
    if (!PyArg_ParseTuple(args, "ikiky#ii", &payload_type, &ssrc, &rtx_payload_type, &rtx_ssrc,
                          &mid, &mid_length, &abs_send_time_header, &audio_level_header))
        return NULL;
    if (payload_type < 0 || payload_type > 127 || rtx_payload_type < -1 || rtx_payload_type > 127
            || mid_length > 17 || abs_send_time_header < -1 || abs_send_time_header > 255
            || audio_level_header < -1 || audio_level_header > 255) {
        PyErr_SetString(PyExc_ValueError, "configure(): a payload type, mid or header out of "
                                          "range");
        return NULL;
    }
    self->payload_type = payload_type;
    self->ssrc = (uint32_t)ssrc;
    self->rtx_payload_type = rtx_payload_type;
    self->rtx_ssrc = (uint32_t)rtx_ssrc;
    memcpy(self->mid, mid, (size_t)mid_length);
    self->mid_length = (int)mid_length;
    self->abs_send_time_header = abs_send_time_header;
    self->audio_level_header = audio_level_header;
    self->configured = 1;
    Py_RETURN_NONE;
}

/* rewrite(source, sequence, timestamp, now, clock_rate): the rule alone, (sequence, timestamp)
 * or None; write() applies it to each packet. */
static PyObject *leg_rewrite_method(LegWriter *self, PyObject *args)
{
    unsigned long source, sequence, timestamp;
    double now, clock_rate;
    if (!PyArg_ParseTuple(args, "kkkdd", &source, &sequence, &timestamp, &now, &clock_rate))
        return NULL;
    uint16_t out_sequence;
    uint32_t out_timestamp;
    if (!leg_rewrite(self, (uint32_t)source, (uint16_t)sequence, (uint32_t)timestamp, now,
                     clock_rate, &out_sequence, &out_timestamp))
        Py_RETURN_NONE;
    return Py_BuildValue("(Ik)", (unsigned int)out_sequence, (unsigned long)out_timestamp);
}

/* The publisher's packet rewritten for this leg into ``out`` (SINK_BUFFER bytes, its length
 * in *length), with its rewritten timestamp, and kept to answer NACKs: 1; 0 when it is dropped
 * (counted in ``drops``) or was sent already (the publisher's retransmission of a packet this
 * leg sent: SRTP refuses an index twice); -1 with an exception (a packet too long for SRTP). */
static int leg_write_packet(LegWriter *self, uint32_t source, uint16_t sequence,
                            uint32_t timestamp, int marker, PyObject *payload, int has_level,
                            int voice, int level, double now, double wall, double clock_rate,
                            unsigned char *out, Py_ssize_t *length, uint32_t *out_timestamp)
{
    uint16_t out_sequence;
    if (!leg_rewrite(self, source, sequence, timestamp, now, clock_rate, &out_sequence,
                     out_timestamp)) {
        self->drops += 1;
        return 0;
    }
    Sent *sent = &self->cache[out_sequence % RTP_CACHE];
    if (sent->used && sent->sequence == out_sequence)
        return 0;
    unsigned char extensions[MAX_EXTENSIONS];
    int extensions_length = leg_extensions(self, wall, has_level, voice, level, extensions);
    if (12 + extensions_length + PyBytes_GET_SIZE(payload) > SINK_BUFFER - SRTP_MAX_TRAILER) {
        PyErr_SetString(PyExc_ValueError, "packet is too long");  /* as pylibsrtp */
        return -1;
    }
    *length = rtp_fill(out, self->payload_type, marker, out_sequence, *out_timestamp, self->ssrc,
                       extensions, extensions_length, NULL, 0, payload);
    sent->used = 1;
    sent->sequence = out_sequence;
    sent->marker = marker;
    sent->timestamp = *out_timestamp;
    memcpy(sent->extensions, extensions, (size_t)extensions_length);
    sent->extensions_length = extensions_length;
    Py_XSETREF(sent->payload, Py_NewRef(payload));
    return 1;
}

/* aiortc's audio level, (voice, -dBov) or None, into has_level, voice and level: 0, or -1
 * with an exception. */
static int read_audio_level(PyObject *audio_level, int *has_level, int *voice, int *level)
{
    *has_level = *voice = *level = 0;
    if (audio_level == Py_None)
        return 0;
    if (!PyTuple_Check(audio_level) || PyTuple_GET_SIZE(audio_level) != 2) {
        PyErr_SetString(PyExc_TypeError, "audio_level is (voice, level) or None");
        return -1;
    }
    *voice = PyObject_IsTrue(PyTuple_GET_ITEM(audio_level, 0));
    *level = (int)PyLong_AsLong(PyTuple_GET_ITEM(audio_level, 1));
    if (*voice < 0 || (*level == -1 && PyErr_Occurred()))
        return -1;
    *has_level = 1;
    return 0;
}

/* write(source, sequence, timestamp, marker, payload, audio_level, now, wall, clock_rate):
 * leg_write_packet's (bytes, rewritten timestamp), or None. ``audio_level`` is aiortc's
 * (voice, -dBov) or None; ``now`` is monotonic, ``wall`` Unix time. */
static PyObject *leg_write(LegWriter *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "write() takes 9 arguments");
        return NULL;
    }
    if (!self->configured) {
        PyErr_SetString(PyExc_RuntimeError, "write(): the leg is not configured");
        return NULL;
    }
    unsigned long source = PyLong_AsUnsignedLong(args[0]);
    unsigned long sequence = PyLong_AsUnsignedLong(args[1]);
    unsigned long timestamp = PyLong_AsUnsignedLong(args[2]);
    int marker = PyObject_IsTrue(args[3]);
    double now = PyFloat_AsDouble(args[6]);
    double wall = PyFloat_AsDouble(args[7]);
    double clock_rate = PyFloat_AsDouble(args[8]);
    if (PyErr_Occurred())
        return NULL;
    PyObject *payload = args[4];
    if (!PyBytes_Check(payload)) {
        PyErr_SetString(PyExc_TypeError, "write(): the payload must be bytes");
        return NULL;
    }
    int has_level, voice, level;
    if (read_audio_level(args[5], &has_level, &voice, &level) < 0)
        return NULL;
    unsigned char out[SINK_BUFFER];
    Py_ssize_t length;
    uint32_t out_timestamp;
    int written = leg_write_packet(self, (uint32_t)source, (uint16_t)sequence,
                                   (uint32_t)timestamp, marker, payload, has_level, voice, level,
                                   now, wall, clock_rate, out, &length, &out_timestamp);
    if (written < 0)
        return NULL;
    if (written == 0)
        Py_RETURN_NONE;
    return Py_BuildValue("(y#k)", (const char *)out, length, (unsigned long)out_timestamp);
}

/* attach(sink, mime_type, clock_rate): forward() sends this leg's packets on ``sink`` (an
 * RtpSink); packets of a codec whose lower-case MIME type is not ``mime_type`` are dropped. */
static PyObject *leg_attach(LegWriter *self, PyObject *args)
{
    PyObject *sink, *mime;
    double clock_rate;
    if (!PyArg_ParseTuple(args, "O!Ud", &RtpSinkType, &sink, &mime, &clock_rate))
        return NULL;
    Py_XSETREF(self->sink, Py_NewRef(sink));
    Py_XSETREF(self->mime, Py_NewRef(mime));
    Py_CLEAR(self->publisher_codec);
    self->clock_rate = clock_rate;
    Py_RETURN_NONE;
}

/* detach(): forward() passes this leg by (it stopped); forget the packets kept. */
static PyObject *leg_detach(LegWriter *self, PyObject *unused)
{
    (void)unused;
    leg_detach_all(self);
    leg_clear_cache(self);
    Py_RETURN_NONE;
}

/* True (1) when ``codec`` (the publisher's RTCRtpCodecParameters) is this leg's codec: compared
 * by MIME type when it is not the codec object last seen (they change only on renegotiation). */
static int leg_takes_codec(LegWriter *self, PyObject *codec)
{
    if (codec == self->publisher_codec)
        return 1;
    PyObject *mime = PyObject_GetAttr(codec, name_mime_type);
    if (mime == NULL)
        return -1;
    Py_SETREF(mime, PyObject_CallMethodNoArgs(mime, name_lower));
    if (mime == NULL)
        return -1;
    int same = PyObject_RichCompareBool(mime, self->mime, Py_EQ);
    Py_DECREF(mime);
    if (same == 1)
        Py_XSETREF(self->publisher_codec, Py_NewRef(codec));
    else if (same == 0)
        self->drops += 1;
    return same;
}

static int leg_forward(LegWriter *self, const Incoming *in, PyObject *codec, double now,
                       double wall, uint64_t ntp)
{
    if (!self->live || self->sink == NULL || !self->configured)
        return 0;
    int takes = leg_takes_codec(self, codec);
    if (takes <= 0)
        return takes;
    if (self->gate != NULL) {
        PyObject *answer = PyObject_CallOneArg(self->gate, in->payload);
        int open = answer == NULL ? -1 : PyObject_IsTrue(answer);
        Py_XDECREF(answer);
        if (open <= 0)
            return open;
        Py_CLEAR(self->gate);
    }
    unsigned char out[SINK_BUFFER];
    Py_ssize_t length;
    uint32_t timestamp;
    int written = leg_write_packet(self, in->source, in->sequence, in->timestamp, in->marker,
                                   in->payload, in->has_level, in->voice, in->level, now, wall,
                                   self->clock_rate, out, &length, &timestamp);
    if (written <= 0)
        return written;
    int sent = sink_send_buffer((RtpSink *)self->sink, out, length, 0);
    if (sent <= 0)
        return sent;
    self->packets += 1;
    self->octets += PyBytes_GET_SIZE(in->payload);
    self->ntp_timestamp = ntp;
    self->rtp_timestamp = timestamp;
    return 1;
}

Py_ssize_t legs_forward(PyObject *legs, const Incoming *in, PyObject *codec, double now,
                        double wall)
{
    PyObject *sequence = PySequence_Fast(legs, "forward(): legs must be a sequence");
    if (sequence == NULL)
        return -1;
    /* The sender reports' NTP time of ``wall``, 64-bit. */
    uint64_t ntp = (uint64_t)((wall + NTP_OFFSET) * 4294967296.0);
    PyObject *failed_type = NULL, *failed_value = NULL, *failed_traceback = NULL;
    Py_ssize_t forwarded = 0;
    /* The size is read again each time: a leg's gate (Python) may change a list of legs. */
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(sequence); i++) {
        PyObject *leg = Py_NewRef(PySequence_Fast_GET_ITEM(sequence, i));
        int sent;
        if (!PyObject_TypeCheck(leg, &LegWriterType)) {
            PyErr_SetString(PyExc_TypeError, "forward(): legs must be LegWriters");
            sent = -1;
        } else {
            sent = leg_forward((LegWriter *)leg, in, codec, now, wall, ntp);
        }
        Py_DECREF(leg);
        if (sent > 0)
            forwarded += 1;
        else if (sent < 0 && failed_type == NULL)
            PyErr_Fetch(&failed_type, &failed_value, &failed_traceback);
        else if (sent < 0)
            PyErr_Clear();
    }
    Py_DECREF(sequence);
    if (failed_type != NULL) {
        PyErr_Restore(failed_type, failed_value, failed_traceback);
        return -1;
    }
    return forwarded;
}

/* forward(legs, packet, codec, now, wall): ``packet`` (aiortc's RtpPacket, decrypted, RTX
 * undone) of ``codec``, sent on every live leg of the sequence ``legs``; ``now`` is monotonic,
 * ``wall`` Unix time. The number of legs it went out on. An exception in one leg is raised
 * after the others had the packet. */
static PyObject *forward(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "forward() takes 5 arguments");
        return NULL;
    }
    PyObject *packet = args[1];
    double now = PyFloat_AsDouble(args[3]);
    double wall = PyFloat_AsDouble(args[4]);
    Incoming in = {0};
    PyObject *values[5] = {NULL};
    PyObject *names[5] = {name_ssrc, name_sequence_number, name_timestamp, name_marker,
                          name_payload};
    PyObject *extensions = NULL, *audio_level = NULL, *result = NULL;
    if (PyErr_Occurred())
        goto done;
    for (int i = 0; i < 5; i++)
        if ((values[i] = PyObject_GetAttr(packet, names[i])) == NULL)
            goto done;
    in.source = (uint32_t)PyLong_AsUnsignedLong(values[0]);
    in.sequence = (uint16_t)PyLong_AsUnsignedLong(values[1]);
    in.timestamp = (uint32_t)PyLong_AsUnsignedLong(values[2]);
    in.marker = PyObject_IsTrue(values[3]);
    in.payload = values[4];
    if (PyErr_Occurred())
        goto done;
    if (!PyBytes_Check(in.payload)) {
        PyErr_SetString(PyExc_TypeError, "forward(): the payload must be bytes");
        goto done;
    }
    if ((extensions = PyObject_GetAttr(packet, name_extensions)) == NULL
            || (audio_level = PyObject_GetAttr(extensions, name_audio_level)) == NULL
            || read_audio_level(audio_level, &in.has_level, &in.voice, &in.level) < 0)
        goto done;
    Py_ssize_t forwarded = legs_forward(args[0], &in, args[2], now, wall);
    if (forwarded >= 0)
        result = PyLong_FromSsize_t(forwarded);
done:
    for (int i = 0; i < 5; i++)
        Py_XDECREF(values[i]);
    Py_XDECREF(extensions);
    Py_XDECREF(audio_level);
    return result;
}

/* retransmit(sequence): the packet this leg sent with ``sequence`` again, as RTX where the
 * subscriber negotiated it (RFC 4588: the original sequence number, then the payload), or
 * None when it is no longer kept. */
static PyObject *leg_retransmit(LegWriter *self, PyObject *argument)
{
    long sequence = PyLong_AsLong(argument);
    if (sequence == -1 && PyErr_Occurred())
        return NULL;
    if (sequence < 0 || sequence > 0xFFFF || !self->configured)
        Py_RETURN_NONE;
    Sent *sent = &self->cache[sequence % RTP_CACHE];
    if (!sent->used || sent->sequence != sequence)
        Py_RETURN_NONE;
    if (self->rtx_payload_type >= 0) {
        unsigned char original[2] = {(unsigned char)(sequence >> 8), (unsigned char)sequence};
        PyObject *data = rtp_packet(self->rtx_payload_type, sent->marker, self->rtx_sequence,
                                    sent->timestamp, self->rtx_ssrc, sent->extensions,
                                    sent->extensions_length, original, 2, sent->payload);
        self->rtx_sequence += 1;
        return data;
    }
    return rtp_packet(self->payload_type, sent->marker, sent->sequence, sent->timestamp,
                      self->ssrc, sent->extensions, sent->extensions_length, NULL, 0,
                      sent->payload);
}

static PyObject *leg_clear(LegWriter *self, PyObject *unused)
{
    (void)unused;
    leg_clear_cache(self);
    Py_RETURN_NONE;
}

static PyObject *leg_drops(LegWriter *self, void *closure)
{
    (void)closure;
    return PyLong_FromLongLong(self->drops);
}

static PyObject *leg_packets(LegWriter *self, void *closure)
{
    (void)closure;
    return PyLong_FromLongLong(self->packets);
}

static PyObject *leg_octets(LegWriter *self, void *closure)
{
    (void)closure;
    return PyLong_FromLongLong(self->octets);
}

static PyObject *leg_ntp_timestamp(LegWriter *self, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLongLong(self->ntp_timestamp);
}

static PyObject *leg_rtp_timestamp(LegWriter *self, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLong(self->rtp_timestamp);
}

static PyObject *leg_get_live(LegWriter *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->live);
}

static int leg_set_live(LegWriter *self, PyObject *value, void *closure)
{
    (void)closure;
    int live = value == NULL ? 0 : PyObject_IsTrue(value);
    if (live < 0)
        return -1;
    self->live = live;
    return 0;
}

static PyObject *leg_get_gate(LegWriter *self, void *closure)
{
    (void)closure;
    return Py_NewRef(self->gate != NULL ? self->gate : Py_None);
}

static int leg_set_gate(LegWriter *self, PyObject *value, void *closure)
{
    (void)closure;
    if (value != NULL && value != Py_None && !PyCallable_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "gate must be callable or None");
        return -1;
    }
    Py_XSETREF(self->gate, value == NULL || value == Py_None ? NULL : Py_NewRef(value));
    return 0;
}

static PyMethodDef leg_methods[] = {
    {"configure", (PyCFunction)leg_configure, METH_VARARGS,
     "configure(payload_type, ssrc, rtx_payload_type, rtx_ssrc, mid, abs_send_time_header, "
     "audio_level_header)"},
    {"rewrite", (PyCFunction)leg_rewrite_method, METH_VARARGS,
     "rewrite(source, sequence, timestamp, now, clock_rate): (sequence, timestamp) or None"},
    {"write", (PyCFunction)(void (*)(void))leg_write, METH_FASTCALL,
     "write(source, sequence, timestamp, marker, payload, audio_level, now, wall, clock_rate): "
     "(bytes, timestamp) or None"},
    {"retransmit", (PyCFunction)leg_retransmit, METH_O,
     "retransmit(sequence): the sent packet again (RTX where negotiated), or None"},
    {"clear", (PyCFunction)leg_clear, METH_NOARGS, "clear(): forget the packets kept"},
    {"attach", (PyCFunction)leg_attach, METH_VARARGS,
     "attach(sink, mime_type, clock_rate): where forward() sends"},
    {"detach", (PyCFunction)leg_detach, METH_NOARGS,
     "detach(): forward() passes this leg by; the packets kept are forgotten"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef leg_getset[] = {
    {"drops", (getter)leg_drops, NULL,
     "packets dropped: by the rewriting rules, or of another codec", NULL},
    {"packets", (getter)leg_packets, NULL, "packets forward() sent", NULL},
    {"octets", (getter)leg_octets, NULL, "their payload bytes", NULL},
    {"ntp_timestamp", (getter)leg_ntp_timestamp, NULL, "the NTP time the last went at", NULL},
    {"rtp_timestamp", (getter)leg_rtp_timestamp, NULL, "the last one's RTP timestamp", NULL},
    {"live", (getter)leg_get_live, (setter)leg_set_live, "whether forward() sends", NULL},
    {"gate", (getter)leg_get_gate, (setter)leg_set_gate,
     "called with each payload until it answers true, or None", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef leg_functions[] = {
    {"forward", (PyCFunction)(void (*)(void))forward, METH_FASTCALL,
     "forward(legs, packet, codec, now, wall): send an RTP packet on every live leg; how many "
     "it went out on"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject LegWriterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rooms._native.LegWriter",
    .tp_basicsize = sizeof(LegWriter),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "LegWriter(first_sequence, first_timestamp, first_rtx_sequence): one RTP leg's "
              "rewriting, packets and NACK cache.",
    .tp_new = leg_new,
    .tp_traverse = (traverseproc)leg_traverse,
    .tp_clear = (inquiry)leg_detach_all,
    .tp_dealloc = (destructor)leg_dealloc,
    .tp_methods = leg_methods,
    .tp_getset = leg_getset,
};

int leg_add_to(PyObject *module)
{
    if (name_lower == NULL) {
        const char *strings[] = {"ssrc", "sequence_number", "timestamp", "marker", "payload",
                                 "extensions", "audio_level", "mimeType", "lower"};
        PyObject **names[] = {&name_ssrc, &name_sequence_number, &name_timestamp, &name_marker,
                              &name_payload, &name_extensions, &name_audio_level,
                              &name_mime_type, &name_lower};
        for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
            if ((*names[i] = PyUnicode_InternFromString(strings[i])) == NULL)
                return -1;
    }
    if (PyType_Ready(&LegWriterType) < 0
            || PyModule_AddObjectRef(module, "LegWriter", (PyObject *)&LegWriterType) < 0
            || PyModule_AddFunctions(module, leg_functions) < 0
            || PyModule_AddIntConstant(module, "RTP_CACHE", RTP_CACHE) < 0
            || PyModule_AddIntConstant(module, "REORDER_WINDOW", REORDER_WINDOW) < 0)
        return -1;
    return PyModule_AddIntConstant(module, "RETIRED_SOURCES", RETIRED_SOURCES);
}
