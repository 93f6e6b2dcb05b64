/* rooms._native: the per-packet work of the media path that is pure arithmetic, in C.
 *
 * RemoteBitrateEstimator: the receive-side, delay-based bandwidth estimate of each video
 * receiver (the REMB the server sends to a publisher), with the rules and constants of aiortc
 * 1.16.0's aiortc.rate.RemoteBitrateEstimator (itself after webrtc.org): an inter-arrival
 * filter over 5 ms groups of abs-send-time, a Kalman filter of the queuing delay's trend, an
 * overuse detector with an adaptive threshold, AIMD rate control and a 1 s incoming bit rate.
 * Every step is done in the same order and the same double arithmetic as the Python one, so
 * the two give the same estimates for the same packets (tests/rooms/test_native_rate.py runs
 * both side by side on generated arrivals). rooms/passthrough.py (15.) puts it in place of the
 * Python one on each receiver: aiortc calls it for every video packet.
 *
 * JitterBuffer: aiortc.jitterbuffer.JitterBuffer, which reassembles the recording's frames
 * from each receiver's packets (once per track), and vp8_depayload, aiortc.codecs.vpx's, which
 * strips each VP8 packet's payload descriptor first; tests/rooms/test_native_jitter.py runs
 * both against aiortc's on generated packets.
 *
 * Srtp: a pylibsrtp session's protect and unprotect without pylibsrtp's Python wrapper (a
 * buffer copy in and out through cffi, per packet): libsrtp's own functions, called through
 * the addresses pylibsrtp's cffi library gives, on the libsrtp session pylibsrtp made
 * (rooms/passthrough.py 16.). The same limits, results and errors as pylibsrtp's.
 *
 * LegWriter: what rooms/rtp_forward.py's RtpLeg does to each packet it forwards, rewriting its
 * sequence number and timestamp, writing its header and extensions for the subscriber, and
 * keeping it to answer NACKs (tests/rooms/test_rtp_forward.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define BURST_DELTA_THRESHOLD_MS 5
#define MAX_ADAPT_OFFSET_MS 15
#define MIN_NUM_DELTAS 60
#define DELTA_COUNTER_MAX 1000
#define MIN_FRAME_PERIOD_HISTORY_LENGTH 60
#define INTER_ARRIVAL_SHIFT 26
#define TIMESTAMP_GROUP_LENGTH_MS 5
#define TIMESTAMP_TO_MS (1000.0 / (double)(1 << INTER_ARRIVAL_SHIFT))
#define GROUP_LENGTH ((TIMESTAMP_GROUP_LENGTH_MS << INTER_ARRIVAL_SHIFT) / 1000)
#define RATE_WINDOW_MS 1000
#define RATE_SCALE 8000
#define FEEDBACK_INTERVAL_MS 500

enum usage { NORMAL = 0, UNDERUSING = 1, OVERUSING = 2 };
enum control { HOLD = 0, INCREASE = 1, DECREASE = 2 };

static int64_t uint32_add(int64_t a, int64_t b) { return (a + b) & 0xFFFFFFFF; }

static int uint32_gt(int64_t a, int64_t b)
{
    const int64_t half = 0x80000000;
    return (a < b && b - a > half) || (a > b && a - b < half);
}

/* Python's round() of a double: halves to even (the default rounding mode). */
static int64_t round_even(double x) { return (int64_t)nearbyint(x); }

typedef struct {
    int has_avg_max;
    double avg_max_bitrate_kbps;
    double var_max_bitrate_kbps;
    int64_t current_bitrate;
    int current_bitrate_initialized;
    int has_first_throughput_time;
    int64_t first_estimated_throughput_time;
    int has_last_change;
    int64_t last_change_ms;
    int near_max;
    int64_t latest_estimated_throughput;
    int64_t rtt;
    int state;
} Aimd;

typedef struct {
    int64_t first_timestamp, last_timestamp, arrival_time, size;
} Group;

typedef struct {
    int has_current, has_previous;
    Group current, previous;
} InterArrival;

typedef struct {
    int hypothesis;
    int has_last_update;
    int64_t last_update_ms;
    double k_up, k_down;
    int64_t overuse_counter;
    int has_overuse_time;
    double overuse_time;
    double overuse_time_threshold;
    double previous_offset;
    double threshold;
} Detector;

typedef struct {
    double e00, e01, e10, e11;
    int64_t num_of_deltas;
    double offset, previous_offset, slope;
    double history[MIN_FRAME_PERIOD_HISTORY_LENGTH];
    int history_start, history_length;
    double avg_noise, var_noise;
    double process_noise[2];
} Estimator;

typedef struct {
    int64_t counts[RATE_WINDOW_MS];
    int64_t values[RATE_WINDOW_MS];
    int64_t origin_index;
    int has_origin;
    int64_t origin_ms;
    int64_t total_count, total_value;
} RateCounter;

typedef struct {
    PyObject_HEAD
    RateCounter incoming;
    int incoming_initialized;
    InterArrival inter_arrival;
    Estimator estimator;
    Detector detector;
    Aimd rate_control;
    int has_last_update;
    int64_t last_update_ms;
    /* The SSRCs seen, in the order first seen (a Python dict's keys). */
    uint32_t *ssrcs;
    Py_ssize_t ssrc_count, ssrc_capacity;
} Rbe;

/* AIMD rate control ------------------------------------------------------------------------ */

static void aimd_init(Aimd *a)
{
    memset(a, 0, sizeof(*a));
    a->var_max_bitrate_kbps = 0.4;
    a->current_bitrate = 30000000;
    a->latest_estimated_throughput = 30000000;
    a->rtt = 200;
    a->state = HOLD;
}

static int64_t aimd_clamp(const Aimd *a, int64_t new_bitrate, int64_t throughput)
{
    int64_t max_bitrate = (int64_t)(1.5 * (double)throughput) + 10000;
    if (a->current_bitrate > max_bitrate)
        max_bitrate = a->current_bitrate;
    return new_bitrate < max_bitrate ? new_bitrate : max_bitrate;
}

static int64_t aimd_near_max_rate_increase(const Aimd *a)
{
    double bits_per_frame = (double)a->current_bitrate / 30;
    double packets_per_frame = ceil(bits_per_frame / (8 * 1200));
    if (packets_per_frame <= 0)
        return 4000;  /* no bit rate at all (Python divides by zero here) */
    double avg_packet_size_bits = bits_per_frame / packets_per_frame;
    int64_t response_time = a->rtt + 100;
    int64_t increase = (int64_t)((avg_packet_size_bits * 1000) / (double)response_time);
    return increase > 4000 ? increase : 4000;
}

static int64_t aimd_multiplicative_rate_increase(const Aimd *a, int64_t new_bitrate,
                                                 int64_t now_ms)
{
    double alpha = 1.08;
    if (a->has_last_change) {
        int64_t elapsed_ms = now_ms - a->last_change_ms;
        if (elapsed_ms > 1000)
            elapsed_ms = 1000;
        alpha = pow(alpha, (double)elapsed_ms / 1000);
    }
    double increase = (alpha - 1) * (double)new_bitrate;
    if (1000 > increase)
        increase = 1000;
    return (int64_t)increase;
}

static void aimd_update_max_throughput_estimate(Aimd *a, double throughput_kbps)
{
    double alpha = 0.05;
    if (!a->has_avg_max) {
        a->avg_max_bitrate_kbps = throughput_kbps;
        a->has_avg_max = 1;
    } else {
        a->avg_max_bitrate_kbps = (1 - alpha) * a->avg_max_bitrate_kbps + alpha * throughput_kbps;
    }
    double norm = a->avg_max_bitrate_kbps > 1 ? a->avg_max_bitrate_kbps : 1;
    a->var_max_bitrate_kbps = (1 - alpha) * a->var_max_bitrate_kbps
        + alpha * pow(a->avg_max_bitrate_kbps - throughput_kbps, 2) / norm;
    if (2.5 < a->var_max_bitrate_kbps)
        a->var_max_bitrate_kbps = 2.5;
    if (a->var_max_bitrate_kbps <= 0.4)
        a->var_max_bitrate_kbps = 0.4;
}

/* The new target bit rate, or -1 for none yet. */
static int64_t aimd_update(Aimd *a, int usage, int has_throughput, int64_t throughput,
                           int64_t now_ms)
{
    if (!a->current_bitrate_initialized && has_throughput) {
        if (!a->has_first_throughput_time) {
            a->first_estimated_throughput_time = now_ms;
            a->has_first_throughput_time = 1;
        } else if (now_ms - a->first_estimated_throughput_time > 3000) {
            a->current_bitrate = throughput;
            a->current_bitrate_initialized = 1;
        }
    }
    if (!a->current_bitrate_initialized && usage != OVERUSING)
        return -1;

    if (usage == NORMAL && a->state == HOLD) {
        a->last_change_ms = now_ms;
        a->has_last_change = 1;
        a->state = INCREASE;
    } else if (usage == OVERUSING) {
        a->state = DECREASE;
    } else if (usage == UNDERUSING) {
        a->state = HOLD;
    }

    int64_t new_bitrate = a->current_bitrate;
    if (has_throughput)
        a->latest_estimated_throughput = throughput;
    else
        throughput = a->latest_estimated_throughput;
    double throughput_kbps = (double)throughput / 1000;

    if (a->state == INCREASE) {
        if (a->has_avg_max) {
            double sigma_kbps = sqrt(a->var_max_bitrate_kbps * a->avg_max_bitrate_kbps);
            if (throughput_kbps >= a->avg_max_bitrate_kbps + 3 * sigma_kbps) {
                a->near_max = 0;
                a->has_avg_max = 0;
            }
        }
        if (a->near_max)
            new_bitrate += (int64_t)((double)((now_ms - a->last_change_ms)
                                              * aimd_near_max_rate_increase(a)) / 1000);
        else
            new_bitrate += aimd_multiplicative_rate_increase(a, new_bitrate, now_ms);
        a->last_change_ms = now_ms;
        a->has_last_change = 1;
    } else if (a->state == DECREASE) {
        if (a->has_avg_max) {
            double sigma_kbps = sqrt(a->var_max_bitrate_kbps * a->avg_max_bitrate_kbps);
            if (throughput_kbps < a->avg_max_bitrate_kbps - 3 * sigma_kbps)
                a->has_avg_max = 0;
        }
        aimd_update_max_throughput_estimate(a, throughput_kbps);
        a->near_max = 1;
        new_bitrate = round_even(0.85 * (double)throughput);
        a->last_change_ms = now_ms;
        a->has_last_change = 1;
        a->state = HOLD;
    }
    a->current_bitrate = aimd_clamp(a, new_bitrate, throughput);
    return a->current_bitrate;
}

/* Inter-arrival filter --------------------------------------------------------------------- */

static void group_start(Group *g, int64_t timestamp)
{
    g->first_timestamp = g->last_timestamp = timestamp;
    g->arrival_time = 0;
    g->size = 0;
}

static int belongs_to_burst(const InterArrival *ia, int64_t timestamp, int64_t arrival_time)
{
    int64_t timestamp_delta = uint32_add(timestamp, -ia->current.last_timestamp);
    int64_t timestamp_delta_ms = round_even(TIMESTAMP_TO_MS * (double)timestamp_delta);
    int64_t arrival_time_delta = arrival_time - ia->current.arrival_time;
    return timestamp_delta_ms == 0
        || (arrival_time_delta - timestamp_delta_ms < 0
            && arrival_time_delta <= BURST_DELTA_THRESHOLD_MS);
}

/* 1 and the deltas of the group that just closed, or 0. */
static int compute_deltas(InterArrival *ia, int64_t timestamp, int64_t arrival_time,
                          int64_t size, int64_t *d_timestamp, int64_t *d_arrival,
                          int64_t *d_size)
{
    int found = 0;
    if (!ia->has_current) {
        group_start(&ia->current, timestamp);
        ia->has_current = 1;
    } else if (uint32_add(timestamp, -ia->current.first_timestamp) >= 0x80000000) {
        return 0;  /* out of order */
    } else if (!belongs_to_burst(ia, timestamp, arrival_time)
               && uint32_add(timestamp, -ia->current.first_timestamp) > GROUP_LENGTH) {
        if (ia->has_previous) {
            *d_timestamp = uint32_add(ia->current.last_timestamp, -ia->previous.last_timestamp);
            *d_arrival = ia->current.arrival_time - ia->previous.arrival_time;
            *d_size = ia->current.size - ia->previous.size;
            found = 1;
        }
        ia->previous = ia->current;
        ia->has_previous = 1;
        group_start(&ia->current, timestamp);
    } else if (uint32_gt(timestamp, ia->current.last_timestamp)) {
        ia->current.last_timestamp = timestamp;
    }
    ia->current.size += size;
    ia->current.arrival_time = arrival_time;
    return found;
}

/* Overuse detector ------------------------------------------------------------------------- */

static void detector_init(Detector *d)
{
    memset(d, 0, sizeof(*d));
    d->hypothesis = NORMAL;
    d->k_up = 0.0087;
    d->k_down = 0.039;
    d->overuse_time_threshold = 10;
    d->previous_offset = 0.0;
    d->threshold = 12.5;
}

static void detector_update_threshold(Detector *d, double modified_offset, int64_t now_ms)
{
    if (!d->has_last_update) {
        d->last_update_ms = now_ms;
        d->has_last_update = 1;
    }
    if (fabs(modified_offset) > d->threshold + MAX_ADAPT_OFFSET_MS) {
        d->last_update_ms = now_ms;
        return;
    }
    double k = fabs(modified_offset) < d->threshold ? d->k_down : d->k_up;
    int64_t time_delta_ms = now_ms - d->last_update_ms;
    if (time_delta_ms > 100)
        time_delta_ms = 100;
    d->threshold += k * (fabs(modified_offset) - d->threshold) * (double)time_delta_ms;
    if (600 < d->threshold)
        d->threshold = 600;
    if (d->threshold <= 6)
        d->threshold = 6;
    d->last_update_ms = now_ms;
}

static void detector_detect(Detector *d, double offset, double timestamp_delta_ms,
                            int64_t num_of_deltas, int64_t now_ms)
{
    if (num_of_deltas < 2)
        return;
    double T = (double)(num_of_deltas < MIN_NUM_DELTAS ? num_of_deltas : MIN_NUM_DELTAS) * offset;
    if (T > d->threshold) {
        if (!d->has_overuse_time) {
            d->overuse_time = timestamp_delta_ms / 2;
            d->has_overuse_time = 1;
        } else {
            d->overuse_time += timestamp_delta_ms;
        }
        d->overuse_counter += 1;
        if (d->overuse_time > d->overuse_time_threshold && d->overuse_counter > 1
                && offset >= d->previous_offset) {
            d->overuse_counter = 0;
            d->overuse_time = 0;
            d->hypothesis = OVERUSING;
        }
    } else if (T < -d->threshold) {
        d->overuse_counter = 0;
        d->has_overuse_time = 0;
        d->hypothesis = UNDERUSING;
    } else {
        d->overuse_counter = 0;
        d->has_overuse_time = 0;
        d->hypothesis = NORMAL;
    }
    d->previous_offset = offset;
    detector_update_threshold(d, T, now_ms);
}

/* Overuse estimator (Kalman filter) -------------------------------------------------------- */

static void estimator_init(Estimator *e)
{
    memset(e, 0, sizeof(*e));
    e->e00 = 100.0;
    e->e11 = 0.1;
    e->slope = 1.0 / 64;
    e->var_noise = 50.0;
    e->process_noise[0] = 1e-13;
    e->process_noise[1] = 1e-3;
}

static double estimator_min_frame_period(Estimator *e, double ts_delta)
{
    double min_frame_period = ts_delta;
    if (e->history_length >= MIN_FRAME_PERIOD_HISTORY_LENGTH) {
        e->history_start = (e->history_start + 1) % MIN_FRAME_PERIOD_HISTORY_LENGTH;
        e->history_length -= 1;
    }
    for (int i = 0; i < e->history_length; i++) {
        double old = e->history[(e->history_start + i) % MIN_FRAME_PERIOD_HISTORY_LENGTH];
        if (!(min_frame_period < old))
            min_frame_period = old;
    }
    e->history[(e->history_start + e->history_length) % MIN_FRAME_PERIOD_HISTORY_LENGTH] =
        ts_delta;
    e->history_length += 1;
    return min_frame_period;
}

static void estimator_update_noise(Estimator *e, double residual, double ts_delta)
{
    double alpha = 0.01;
    if (e->num_of_deltas > 10 * 30)
        alpha = 0.002;
    double beta = pow(1 - alpha, ts_delta * 30.0 / 1000.0);
    e->avg_noise = beta * e->avg_noise + (1 - beta) * residual;
    e->var_noise = beta * e->var_noise + (1 - beta) * pow(e->avg_noise - residual, 2);
    if (e->var_noise < 1)
        e->var_noise = 1;
}

static void estimator_update(Estimator *e, int64_t time_delta_ms, double timestamp_delta_ms,
                             int64_t size_delta, int hypothesis)
{
    double min_frame_period = estimator_min_frame_period(e, timestamp_delta_ms);
    double t_ts_delta = (double)time_delta_ms - timestamp_delta_ms;
    double h0 = (double)size_delta, h1 = 1.0;

    e->num_of_deltas = e->num_of_deltas + 1 < DELTA_COUNTER_MAX ? e->num_of_deltas + 1
                                                                : DELTA_COUNTER_MAX;
    e->e00 += e->process_noise[0];
    e->e11 += e->process_noise[1];
    if ((hypothesis == OVERUSING && e->offset < e->previous_offset)
            || (hypothesis == UNDERUSING && e->offset > e->previous_offset))
        e->e11 += 10 * e->process_noise[1];

    double eh0 = e->e00 * h0 + e->e01 * h1;
    double eh1 = e->e10 * h0 + e->e11 * h1;

    double residual = t_ts_delta - e->slope * h0 - e->offset;
    if (hypothesis == NORMAL) {
        double max_residual = 3.0 * sqrt(e->var_noise);
        if (fabs(residual) < max_residual)
            estimator_update_noise(e, residual, min_frame_period);
        else
            estimator_update_noise(e, residual < 0 ? -max_residual : max_residual,
                                   min_frame_period);
    }

    double denom = e->var_noise + h0 * eh0 + h1 * eh1;
    double k0 = eh0 / denom, k1 = eh1 / denom;
    double ikh00 = 1.0 - k0 * h0, ikh01 = -k0 * h1;
    double ikh10 = -k1 * h0, ikh11 = 1.0 - k1 * h1;
    double e00 = e->e00, e01 = e->e01, e10 = e->e10, e11 = e->e11;

    e->e00 = e00 * ikh00 + e10 * ikh01;
    e->e01 = e01 * ikh00 + e11 * ikh01;
    e->e10 = e00 * ikh10 + e10 * ikh11;
    e->e11 = e01 * ikh10 + e11 * ikh11;

    e->previous_offset = e->offset;
    e->slope += k0 * residual;
    e->offset += k1 * residual;
}

/* Incoming bit rate over 1 ms buckets ------------------------------------------------------ */

static void rate_reset(RateCounter *r)
{
    memset(r, 0, sizeof(*r));
}

static void rate_erase_old(RateCounter *r, int64_t now_ms)
{
    int64_t new_origin_ms = now_ms - RATE_WINDOW_MS + 1;
    if (new_origin_ms - r->origin_ms >= RATE_WINDOW_MS) {
        /* Every bucket is out of the window: what the loop below would do, at once. */
        memset(r->counts, 0, sizeof(r->counts));
        memset(r->values, 0, sizeof(r->values));
        r->total_count = r->total_value = 0;
        r->origin_index = (r->origin_index + (new_origin_ms - r->origin_ms)) % RATE_WINDOW_MS;
        r->origin_ms = new_origin_ms;
        return;
    }
    while (r->origin_ms < new_origin_ms) {
        r->total_count -= r->counts[r->origin_index];
        r->total_value -= r->values[r->origin_index];
        r->counts[r->origin_index] = 0;
        r->values[r->origin_index] = 0;
        r->origin_index = (r->origin_index + 1) % RATE_WINDOW_MS;
        r->origin_ms += 1;
    }
}

static void rate_add(RateCounter *r, int64_t value, int64_t now_ms)
{
    if (!r->has_origin) {
        r->origin_ms = now_ms;
        r->has_origin = 1;
    } else {
        rate_erase_old(r, now_ms);
    }
    int64_t index = (r->origin_index + now_ms - r->origin_ms) % RATE_WINDOW_MS;
    if (index < 0)
        index += RATE_WINDOW_MS;  /* Python's modulo of a negative number */
    r->counts[index] += 1;
    r->values[index] += value;
    r->total_count += 1;
    r->total_value += value;
}

/* 1 and the rate in bit/s, or 0 for none. */
static int rate_rate(RateCounter *r, int64_t now_ms, int64_t *rate)
{
    if (!r->has_origin)
        return 0;
    rate_erase_old(r, now_ms);
    int64_t active_window_size = now_ms - r->origin_ms + 1;
    if (r->total_count > 0 && active_window_size > 1) {
        *rate = round_even((double)(RATE_SCALE * r->total_value) / (double)active_window_size);
        return 1;
    }
    return 0;
}

/* The Python type -------------------------------------------------------------------------- */

static PyObject *rbe_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0)) {
        PyErr_SetString(PyExc_TypeError, "RemoteBitrateEstimator() takes no arguments");
        return NULL;
    }
    Rbe *self = (Rbe *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    rate_reset(&self->incoming);
    self->incoming_initialized = 1;
    memset(&self->inter_arrival, 0, sizeof(self->inter_arrival));
    estimator_init(&self->estimator);
    detector_init(&self->detector);
    aimd_init(&self->rate_control);
    self->has_last_update = 0;
    self->ssrcs = NULL;
    self->ssrc_count = self->ssrc_capacity = 0;
    return (PyObject *)self;
}

static void rbe_dealloc(Rbe *self)
{
    PyMem_Free(self->ssrcs);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int rbe_note_ssrc(Rbe *self, uint32_t ssrc)
{
    for (Py_ssize_t i = 0; i < self->ssrc_count; i++)
        if (self->ssrcs[i] == ssrc)
            return 0;
    if (self->ssrc_count == self->ssrc_capacity) {
        Py_ssize_t capacity = self->ssrc_capacity ? self->ssrc_capacity * 2 : 4;
        uint32_t *grown = PyMem_Realloc(self->ssrcs, (size_t)capacity * sizeof(uint32_t));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        self->ssrcs = grown;
        self->ssrc_capacity = capacity;
    }
    self->ssrcs[self->ssrc_count++] = ssrc;
    return 0;
}

static const char *const add_names[] = {"arrival_time_ms", "abs_send_time", "payload_size",
                                        "ssrc"};

/* add(arrival_time_ms, abs_send_time, payload_size, ssrc), by position or by name as aiortc
 * calls it: None, or (target bit rate, [SSRCs]) when a REMB is due. */
static PyObject *rbe_add(Rbe *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *values[4] = {NULL, NULL, NULL, NULL};
    if (nargs > 4) {
        PyErr_SetString(PyExc_TypeError, "add() takes 4 arguments");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        values[i] = args[i];
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        const char *name = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kwnames, k));
        if (name == NULL)
            return NULL;
        int slot = -1;
        for (int j = 0; j < 4; j++)
            if (strcmp(name, add_names[j]) == 0)
                slot = j;
        if (slot < 0 || values[slot] != NULL) {
            PyErr_Format(PyExc_TypeError, "add() got an unexpected or repeated argument '%s'",
                         name);
            return NULL;
        }
        values[slot] = args[nargs + k];
    }
    int64_t numbers[4];
    for (int j = 0; j < 4; j++) {
        if (values[j] == NULL) {
            PyErr_Format(PyExc_TypeError, "add() missing argument '%s'", add_names[j]);
            return NULL;
        }
        numbers[j] = PyLong_AsLongLong(values[j]);
        if (numbers[j] == -1 && PyErr_Occurred())
            return NULL;
    }
    int64_t arrival_time_ms = numbers[0], abs_send_time = numbers[1];
    int64_t payload_size = numbers[2], ssrc = numbers[3];
    if (abs_send_time < 0 || abs_send_time > 0xFFFFFF || ssrc < 0 || ssrc > 0xFFFFFFFF) {
        PyErr_SetString(PyExc_ValueError, "add(): abs_send_time is 24 bits, ssrc 32 bits");
        return NULL;
    }
    if (rbe_note_ssrc(self, (uint32_t)ssrc) < 0)
        return NULL;

    int64_t timestamp = abs_send_time << 8, rate;
    if (rate_rate(&self->incoming, arrival_time_ms, &rate)) {
        self->incoming_initialized = 1;
    } else if (self->incoming_initialized) {
        rate_reset(&self->incoming);
        self->incoming_initialized = 0;
    }
    rate_add(&self->incoming, payload_size, arrival_time_ms);

    int64_t d_timestamp, d_arrival, d_size;
    if (compute_deltas(&self->inter_arrival, timestamp, arrival_time_ms, payload_size,
                       &d_timestamp, &d_arrival, &d_size)) {
        double timestamp_delta_ms = (double)d_timestamp * TIMESTAMP_TO_MS;
        estimator_update(&self->estimator, d_arrival, timestamp_delta_ms, d_size,
                         self->detector.hypothesis);
        detector_detect(&self->detector, self->estimator.offset, timestamp_delta_ms,
                        self->estimator.num_of_deltas, arrival_time_ms);
    }

    if (!self->has_last_update
            || arrival_time_ms - self->last_update_ms > FEEDBACK_INTERVAL_MS
            || self->detector.hypothesis == OVERUSING) {
        int has_rate = rate_rate(&self->incoming, arrival_time_ms, &rate);
        int64_t target = aimd_update(&self->rate_control, self->detector.hypothesis, has_rate,
                                     rate, arrival_time_ms);
        if (target >= 0) {
            self->last_update_ms = arrival_time_ms;
            self->has_last_update = 1;
            PyObject *ssrcs = PyList_New(self->ssrc_count);
            if (ssrcs == NULL)
                return NULL;
            for (Py_ssize_t i = 0; i < self->ssrc_count; i++) {
                PyObject *item = PyLong_FromUnsignedLong(self->ssrcs[i]);
                if (item == NULL) {
                    Py_DECREF(ssrcs);
                    return NULL;
                }
                PyList_SET_ITEM(ssrcs, i, item);
            }
            return Py_BuildValue("(LN)", (long long)target, ssrcs);
        }
    }
    Py_RETURN_NONE;
}

static PyMethodDef rbe_methods[] = {
    {"add", (PyCFunction)(void (*)(void))rbe_add, METH_FASTCALL | METH_KEYWORDS,
     "add(arrival_time_ms, abs_send_time, payload_size, ssrc): None, or (bit rate, ssrcs) "
     "when a REMB is due."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RbeType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rooms._native.RemoteBitrateEstimator",
    .tp_basicsize = sizeof(Rbe),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "aiortc's RemoteBitrateEstimator (REMB), in C.",
    .tp_new = rbe_new,
    .tp_dealloc = (destructor)rbe_dealloc,
    .tp_methods = rbe_methods,
};

/* Jitter buffer ---------------------------------------------------------------------------- */

/* aiortc.jitterbuffer.JitterFrame: what add() hands out, as aiortc's own buffer does. */
static PyObject *jitter_frame_type = NULL;

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
    PyObject *frame = PyObject_CallFunction(jitter_frame_type, "(NL)", data, (long long)timestamp);
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

static int read_int(PyObject *object, const char *name, int64_t low, int64_t high,
                    int64_t *value)
{
    PyObject *attribute = PyObject_GetAttrString(object, name);
    if (attribute == NULL)
        return -1;
    *value = PyLong_AsLongLong(attribute);
    Py_DECREF(attribute);
    if (*value == -1 && PyErr_Occurred())
        return -1;
    if (*value < low || *value > high) {
        PyErr_Format(PyExc_ValueError, "packet.%s out of range", name);
        return -1;
    }
    return 0;
}

/* add(packet): (pli_flag, JitterFrame or None), as aiortc's JitterBuffer.add; the packet's
 * depacketized payload is its ``_data``. */
static PyObject *jb_add(JitterBuffer *self, PyObject *packet)
{
    int64_t sequence, timestamp;
    if (read_int(packet, "sequence_number", 0, 0xFFFF, &sequence) < 0
            || read_int(packet, "timestamp", 0, 0xFFFFFFFF, &timestamp) < 0)
        return NULL;
    PyObject *data = PyObject_GetAttrString(packet, "_data");
    if (data == NULL)
        return NULL;
    if (!PyBytes_Check(data)) {
        Py_DECREF(data);
        PyErr_SetString(PyExc_TypeError, "packet._data must be bytes");
        return NULL;
    }
    int pli = 0;
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
                pli = 1;
        } else {
            Py_DECREF(data);
            return Py_BuildValue("(OO)", pli ? Py_True : Py_False, Py_None);
        }
    }
    if (delta >= self->capacity) {
        /* Remove just enough frames to fit the packet. */
        if (jb_smart_remove(self, delta - self->capacity + 1))
            self->origin = (Py_ssize_t)sequence;
        if (self->is_video)
            pli = 1;
    }
    Py_ssize_t pos = (Py_ssize_t)sequence % self->capacity;
    Py_XSETREF(self->data[pos], data);
    self->timestamps[pos] = timestamp;
    PyObject *frame;
    if (jb_remove_frame(self, &frame) < 0)
        return NULL;
    return Py_BuildValue("(ON)", pli ? Py_True : Py_False, frame != NULL ? frame : Py_NewRef(Py_None));
}

static PyMethodDef jb_methods[] = {
    {"add", (PyCFunction)jb_add, METH_O,
     "add(packet): (pli_flag, JitterFrame or None), as aiortc's JitterBuffer.add."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject JitterBufferType = {
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
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(payload);
    Py_ssize_t length = PyBytes_GET_SIZE(payload), pos = 1;
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

/* SRTP through pylibsrtp's libsrtp -------------------------------------------------------- */

/* pylibsrtp.Error and pylibsrtp.ERRORS (its message for each libsrtp status). */
static PyObject *srtp_error_type = NULL;
static PyObject *srtp_error_messages = NULL;

/* libsrtp 2's srtp_protect, srtp_unprotect and srtp_protect_rtcp: (session, buffer, length). */
typedef int (*srtp_function)(void *, void *, int *);

/* pylibsrtp's limits: a 1,500-byte buffer, less the longest trailer protecting may add. */
#define SRTP_BUFFER 1500
#define SRTP_MAX_TRAILER_LEN (16 + 128)
#define SRTP_MAX_SRTCP_TRAILER_LEN (4 + 16 + 128)

typedef struct {
    PyObject_HEAD
    PyObject *owner;  /* the pylibsrtp.Session whose libsrtp session this is: kept alive */
    void *session;
    srtp_function protect, unprotect, protect_rtcp;
} Srtp;

static PyObject *srtp_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"owner", "session", "protect", "unprotect", "protect_rtcp", NULL};
    PyObject *owner;
    unsigned long long session, protect, unprotect, protect_rtcp;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OKKKK", names, &owner, &session, &protect,
                                     &unprotect, &protect_rtcp))
        return NULL;
    if (!session || !protect || !unprotect || !protect_rtcp) {
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
    return (PyObject *)self;
}

static void srtp_dealloc(Srtp *self)
{
    Py_XDECREF(self->owner);
    Py_TYPE(self)->tp_free((PyObject *)self);
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
        PyObject *message = PySequence_GetItem(srtp_error_messages, status);
        if (message == NULL) {
            PyErr_Clear();
            PyErr_Format(srtp_error_type, "libsrtp status %d", status);
        } else {
            PyErr_SetObject(srtp_error_type, message);
            Py_DECREF(message);
        }
        return NULL;
    }
    if (out_length != length + trailer && _PyBytes_Resize(&out, out_length) < 0)
        return NULL;
    return out;
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

static PyMethodDef srtp_methods[] = {
    {"protect", (PyCFunction)srtp_protect, METH_O, "protect(rtp): SRTP, as pylibsrtp's."},
    {"unprotect", (PyCFunction)srtp_unprotect, METH_O, "unprotect(srtp): RTP, as pylibsrtp's."},
    {"protect_rtcp", (PyCFunction)srtp_protect_rtcp, METH_O,
     "protect_rtcp(rtcp): SRTCP, as pylibsrtp's."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SrtpType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rooms._native.Srtp",
    .tp_basicsize = sizeof(Srtp),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Srtp(owner, session, protect, unprotect, protect_rtcp): a pylibsrtp session's "
              "protect and unprotect, called in C (addresses from pylibsrtp's cffi library).",
    .tp_new = srtp_new,
    .tp_dealloc = (destructor)srtp_dealloc,
    .tp_methods = srtp_methods,
};

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
} LegWriter;

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

/* An RTP packet (RFC 3550, no CSRC): the header, the extension block and ``prefix`` (RTX's
 * original sequence number) and ``payload``. */
static PyObject *rtp_packet(int payload_type, int marker, uint16_t sequence, uint32_t timestamp,
                            uint32_t ssrc, const unsigned char *extensions, int extensions_length,
                            const unsigned char *prefix, int prefix_length, PyObject *payload)
{
    Py_ssize_t payload_length = PyBytes_GET_SIZE(payload);
    PyObject *data = PyBytes_FromStringAndSize(
        NULL, 12 + extensions_length + prefix_length + payload_length);
    if (data == NULL)
        return NULL;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(data);
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
    out += 12;
    memcpy(out, extensions, (size_t)extensions_length);
    out += extensions_length;
    memcpy(out, prefix, (size_t)prefix_length);
    out += prefix_length;
    memcpy(out, PyBytes_AS_STRING(payload), (size_t)payload_length);
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

static void leg_dealloc(LegWriter *self)
{
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

/* write(source, sequence, timestamp, marker, payload, audio_level, now, wall, clock_rate):
 * the publisher's packet rewritten for this leg, as (bytes, rewritten timestamp), and kept to
 * answer NACKs; None when it is dropped (counted in ``drops``) or was sent already (the
 * publisher's retransmission of a packet this leg sent: SRTP refuses an index twice).
 * ``audio_level`` is aiortc's (voice, -dBov) or None; ``now`` is monotonic, ``wall`` Unix time. */
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
    int has_level = 0, voice = 0, level = 0;
    if (args[5] != Py_None) {
        if (!PyTuple_Check(args[5]) || PyTuple_GET_SIZE(args[5]) != 2) {
            PyErr_SetString(PyExc_TypeError, "write(): audio_level is (voice, level) or None");
            return NULL;
        }
        voice = PyObject_IsTrue(PyTuple_GET_ITEM(args[5], 0));
        level = (int)PyLong_AsLong(PyTuple_GET_ITEM(args[5], 1));
        if (voice < 0 || (level == -1 && PyErr_Occurred()))
            return NULL;
        has_level = 1;
    }
    uint16_t out_sequence;
    uint32_t out_timestamp;
    if (!leg_rewrite(self, (uint32_t)source, (uint16_t)sequence, (uint32_t)timestamp, now,
                     clock_rate, &out_sequence, &out_timestamp)) {
        self->drops += 1;
        Py_RETURN_NONE;
    }
    Sent *sent = &self->cache[out_sequence % RTP_CACHE];
    if (sent->used && sent->sequence == out_sequence)
        Py_RETURN_NONE;
    unsigned char extensions[MAX_EXTENSIONS];
    int extensions_length = leg_extensions(self, wall, has_level, voice, level, extensions);
    PyObject *data = rtp_packet(self->payload_type, marker, out_sequence, out_timestamp,
                                self->ssrc, extensions, extensions_length, NULL, 0, payload);
    if (data == NULL)
        return NULL;
    sent->used = 1;
    sent->sequence = out_sequence;
    sent->marker = marker;
    sent->timestamp = out_timestamp;
    memcpy(sent->extensions, extensions, (size_t)extensions_length);
    sent->extensions_length = extensions_length;
    Py_XSETREF(sent->payload, Py_NewRef(payload));
    return Py_BuildValue("(Nk)", data, (unsigned long)out_timestamp);
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
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef leg_getset[] = {
    {"drops", (getter)leg_drops, NULL, "packets dropped by the rewriting rules", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject LegWriterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rooms._native.LegWriter",
    .tp_basicsize = sizeof(LegWriter),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "LegWriter(first_sequence, first_timestamp, first_rtx_sequence): one RTP leg's "
              "rewriting, packets and NACK cache.",
    .tp_new = leg_new,
    .tp_dealloc = (destructor)leg_dealloc,
    .tp_methods = leg_methods,
    .tp_getset = leg_getset,
};

static PyMethodDef native_functions[] = {
    {"vp8_depayload", vp8_depayload, METH_O,
     "vp8_depayload(payload): the payload without its VP8 payload descriptor."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "rooms._native",
    .m_doc = "The per-packet arithmetic of the media path, in C.",
    .m_size = -1,
    .m_methods = native_functions,
};

PyMODINIT_FUNC PyInit__native(void)
{
    if (PyType_Ready(&RbeType) < 0 || PyType_Ready(&JitterBufferType) < 0
            || PyType_Ready(&SrtpType) < 0 || PyType_Ready(&LegWriterType) < 0)
        return NULL;
    if (srtp_error_type == NULL) {
        PyObject *pylibsrtp = PyImport_ImportModule("pylibsrtp");
        if (pylibsrtp == NULL)
            return NULL;
        srtp_error_type = PyObject_GetAttrString(pylibsrtp, "Error");
        srtp_error_messages = PyObject_GetAttrString(pylibsrtp, "ERRORS");
        Py_DECREF(pylibsrtp);
        if (srtp_error_type == NULL || srtp_error_messages == NULL)
            return NULL;
    }
    if (jitter_frame_type == NULL) {
        PyObject *jitterbuffer = PyImport_ImportModule("aiortc.jitterbuffer");
        if (jitterbuffer == NULL)
            return NULL;
        jitter_frame_type = PyObject_GetAttrString(jitterbuffer, "JitterFrame");
        Py_DECREF(jitterbuffer);
        if (jitter_frame_type == NULL)
            return NULL;
    }
    PyObject *module = PyModule_Create(&native_module);
    if (module == NULL)
        return NULL;
    if (PyModule_AddObjectRef(module, "RemoteBitrateEstimator", (PyObject *)&RbeType) < 0
            || PyModule_AddObjectRef(module, "JitterBuffer", (PyObject *)&JitterBufferType) < 0
            || PyModule_AddObjectRef(module, "Srtp", (PyObject *)&SrtpType) < 0
            || PyModule_AddObjectRef(module, "LegWriter", (PyObject *)&LegWriterType) < 0
            || PyModule_AddIntConstant(module, "RTP_CACHE", RTP_CACHE) < 0
            || PyModule_AddIntConstant(module, "REORDER_WINDOW", REORDER_WINDOW) < 0
            || PyModule_AddIntConstant(module, "RETIRED_SOURCES", RETIRED_SOURCES) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
