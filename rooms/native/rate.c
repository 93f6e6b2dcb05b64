/* RemoteBitrateEstimator: the receive-side, delay-based bandwidth estimate of each video
 * receiver (the REMB the server sends to a publisher), with the rules and constants of aiortc
 * 1.16.0's aiortc.rate.RemoteBitrateEstimator (itself after webrtc.org): an inter-arrival
 * filter over 5 ms groups of abs-send-time, a Kalman filter of the queuing delay's trend, an
 * overuse detector with an adaptive threshold, AIMD rate control and a 1 s incoming bit rate.
 * Every step is done in the same order and the same double arithmetic as the Python one, so
 * the two give the same estimates for the same packets (tests/rooms/test_native_rate.py runs
 * both side by side on generated arrivals). rooms/passthrough.py (15.) puts it in place of the
 * Python one on each receiver: aiortc calls it for every video packet.
 */
#include "native.h"

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

/* add() on numbers: None, or (target bit rate, [SSRCs]) when a REMB is due (inbound.c calls
 * it for each packet with an abs-send-time). */
PyObject *estimator_add(PyObject *estimator, int64_t arrival_time_ms, int64_t abs_send_time,
                        int64_t payload_size, int64_t ssrc)
{
    Rbe *self = (Rbe *)estimator;
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
    return estimator_add((PyObject *)self, numbers[0], numbers[1], numbers[2], numbers[3]);
}

static PyMethodDef rbe_methods[] = {
    {"add", (PyCFunction)(void (*)(void))rbe_add, METH_FASTCALL | METH_KEYWORDS,
     "add(arrival_time_ms, abs_send_time, payload_size, ssrc): None, or (bit rate, ssrcs) "
     "when a REMB is due."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject RbeType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rooms._native.RemoteBitrateEstimator",
    .tp_basicsize = sizeof(Rbe),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "aiortc's RemoteBitrateEstimator (REMB), in C.",
    .tp_new = rbe_new,
    .tp_dealloc = (destructor)rbe_dealloc,
    .tp_methods = rbe_methods,
};

int rate_add_to(PyObject *module)
{
    if (PyType_Ready(&RbeType) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "RemoteBitrateEstimator", (PyObject *)&RbeType);
}
