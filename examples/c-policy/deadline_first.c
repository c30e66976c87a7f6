/*
 * A perllm scheduling policy written in C: `c-deadline-first`.
 *
 * For each pending request it takes the host's estimates (it sets PERLLM_FLAG_WANTS_ESTIMATES)
 * and, among the servers hosting the model whose estimated finish (now + estimate, plus a
 * queueing allowance for the requests it already placed on that server in this slot) meets the
 * request's deadline (arrival + deadline_ns), picks the one with the lowest weighted energy;
 * if none can meet it, the fastest. It counts met and missed deadlines from `observe` and reports
 * them with `stats`.
 *
 * Config (the scenario's `policy c-deadline-first { slack = 0.8 }`, as JSON): `slack` in (0, 1]
 * (default 1): the estimate must fit in slack x the time left. Any other key is an error.
 *
 * Build: see Makefile (cc -shared -fPIC -fvisibility=hidden -I../../perllm-plugin-abi/include).
 */
#include <perllm_plugin.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double slack;
    uint64_t met, missed, placed;
    uint32_t *extra; /* requests placed per server in the current slot */
    size_t extra_len;
} DeadlineFirst;

/* A minimal reader for the one-key config: `{}`, `{"slack": 0.8}`. */
static int parse_config(PerllmStr config, double *slack, char *why, size_t why_len) {
    char buf[256];
    if (config.len == 0) return 1;
    if (config.len >= sizeof buf) {
        snprintf(why, why_len, "config is %zu bytes long (at most 255)", config.len);
        return 0;
    }
    /* Strings are not NUL-terminated: copy before using C string functions. */
    memcpy(buf, config.ptr, config.len);
    buf[config.len] = '\0';
    const char *p = buf;
    while (*p == ' ' || *p == '{' || *p == '\n') p++;
    if (*p == '}' || *p == '\0') return 1;
    if (strncmp(p, "\"slack\"", 7) != 0) {
        snprintf(why, why_len, "unknown parameter in %s (expected only `slack`)", buf);
        return 0;
    }
    p += 7;
    while (*p == ' ' || *p == ':') p++;
    char *end;
    double v = strtod(p, &end);
    if (end == p || !(v > 0.0 && v <= 1.0)) {
        snprintf(why, why_len, "slack must be a number in (0, 1], got `%.*s`",
                 (int)config.len, (const char *)config.ptr);
        return 0;
    }
    *slack = v;
    return 1;
}

static void *create(PerllmStr config, uint64_t seed, const PerllmErrorSink *err) {
    (void)seed;
    double slack = 1.0;
    char why[320];
    if (!parse_config(config, &slack, why, sizeof why)) {
        perllm_report(err, why);
        return NULL;
    }
    DeadlineFirst *p = calloc(1, sizeof *p);
    if (p == NULL) {
        perllm_report(err, "out of memory");
        return NULL;
    }
    p->slack = slack;
    return p;
}

static void destroy(void *instance) {
    DeadlineFirst *p = instance;
    free(p->extra);
    free(p);
}

static uint32_t schedule(void *instance, const PerllmSlotView *slot, PerllmPlacement *out,
                         size_t out_len, const PerllmErrorSink *err) {
    DeadlineFirst *p = instance;
    size_t ns = slot->servers.len;
    if (p->extra_len < ns) {
        uint32_t *e = realloc(p->extra, ns * sizeof *e);
        if (e == NULL) {
            perllm_report(err, "out of memory");
            return PERLLM_STATUS_ERROR;
        }
        p->extra = e;
        p->extra_len = ns;
    }
    memset(p->extra, 0, ns * sizeof *p->extra);
    const double *w = slot->energy_weights;
    for (size_t r = 0; r < out_len && r < slot->requests.len; r++) {
        const PerllmRequestView *req = perllm_slot_request(slot, r);
        uint64_t due = req->arrival_ns + req->deadline_ns;
        double left = due > slot->now_ns ? (double)(due - slot->now_ns) : 0.0;
        long best = -1, fastest = -1;
        double best_energy = INFINITY, fastest_time = INFINITY;
        for (size_t s = 0; s < ns; s++) {
            const PerllmEstimateView *e = perllm_slot_estimate(slot, r, s);
            if (e == NULL || e->valid != 1) continue; /* not hosted (or no estimates) */
            const PerllmServerView *srv = perllm_slot_server(slot, s);
            /* Requests placed here this slot wait their turn: one prefill + decode round per
             * full batch ahead. */
            double rounds = srv->max_batch ? (double)(p->extra[s] / srv->max_batch) : 0.0;
            double t = (double)e->upload_ns + (double)e->queue_ns + (double)e->download_ns +
                       (rounds + 1.0) * ((double)e->prefill_ns + (double)e->decode_ns);
            double energy = w[0] * e->energy_transmission_j + w[1] * e->energy_inference_j +
                            w[2] * e->energy_idle_j;
            if (t < fastest_time) {
                fastest_time = t;
                fastest = (long)s;
            }
            if (t <= p->slack * left && energy < best_energy) {
                best_energy = energy;
                best = (long)s;
            }
        }
        long pick = best >= 0 ? best : fastest;
        PerllmPlacement *pl = perllm_slot_placement(slot, out, r);
        if (pick < 0) {
            pl->action = PERLLM_ACTION_REJECT;
        } else {
            pl->action = PERLLM_ACTION_ASSIGN;
            pl->server = (uint32_t)pick;
            p->extra[pick]++;
            p->placed++;
        }
    }
    return PERLLM_STATUS_OK;
}

static uint32_t observe(void *instance, const PerllmOutcomeView *o, const PerllmErrorSink *err) {
    (void)err;
    DeadlineFirst *p = instance;
    if (o->met) p->met++; else p->missed++;
    return PERLLM_STATUS_OK;
}

static uint32_t stats(void *instance, const PerllmStatSink *sink) {
    DeadlineFirst *p = instance;
    static const PerllmStr met = PERLLM_STR("c_deadline_first.met");
    static const PerllmStr missed = PERLLM_STR("c_deadline_first.missed");
    static const PerllmStr placed = PERLLM_STR("c_deadline_first.placed");
    sink->emit(sink->ctx, met, (double)p->met);
    sink->emit(sink->ctx, missed, (double)p->missed);
    sink->emit(sink->ctx, placed, (double)p->placed);
    return PERLLM_STATUS_OK;
}

/* Everything the host keeps a pointer to is static, with constant initialisers. */
static const PerllmPolicyVTable VTABLE = {
    .struct_size = sizeof(PerllmPolicyVTable),
    .create = create,
    .destroy = destroy,
    .schedule = schedule,
    .observe = observe,
    .stats = stats,
};

static const PerllmPluginDecl DECLS[] = {{
    .struct_size = sizeof(PerllmPluginDecl),
    .kind = PERLLM_KIND_POLICY,
    .name = PERLLM_STR("c-deadline-first"),
    .version = PERLLM_STR("0.1.0"),
    .description = PERLLM_STR("lowest energy among servers estimated to meet the deadline (C)"),
    .flags = PERLLM_FLAG_WANTS_ESTIMATES,
    .policy = &VTABLE,
}};

static const PerllmPluginList LIST = {
    .struct_size = sizeof(PerllmPluginList),
    .plugins = {DECLS, sizeof DECLS / sizeof DECLS[0]},
};

PERLLM_EXPORT uint32_t perllm_plugin_abi_version(void) { return PERLLM_ABI_VERSION; }

PERLLM_EXPORT const PerllmPluginList *perllm_plugin_declare(void) { return &LIST; }
