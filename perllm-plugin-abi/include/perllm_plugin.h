/*
 * perllm_plugin.h: the perllm plugin ABI for C and C++ (ABI 1.3).
 *
 * The contract is docs/plugin-abi.md; the Rust crate perllm-plugin-abi is the reference. A test
 * (perllm-host/tests/it/c_header.rs) compiles a C program against this header and checks every
 * struct's size and every field's offset, and every constant, against the Rust layout.
 *
 * Rules a C author must not miss (details in docs/plugin-abi.md, "Writing a plugin in C"):
 *  - Strings are PerllmStr {ptr, len}: UTF-8, NOT NUL-terminated. Print them with "%.*s".
 *  - Every struct begins with struct_size. Set it to sizeof(...) in what you build (vtables,
 *    declarations, the list); in what the host hands you, read a field only if
 *    PERLLM_HAS_FIELD(p, Type, field) says the host provides it.
 *  - Arrays of views have a stride in the slot view: index them with perllm_slot_server(),
 *    perllm_slot_request(), perllm_slot_estimate() and perllm_slot_placement() (1.3's in-place
 *    path: perllm_slot_pending() and perllm_slot_decision()), never with [i].
 *  - Export exactly the two entry points with default visibility (PERLLM_EXPORT) and build with
 *    -fvisibility=hidden so that nothing else leaks.
 *  - Declarations must be static (static const with constant initialisers): the host keeps
 *    pointers to them for the life of the process.
 */
#ifndef PERLLM_PLUGIN_H
#define PERLLM_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define PERLLM_EXPORT __declspec(dllexport)
#else
#define PERLLM_EXPORT __attribute__((visibility("default")))
#endif

/* ---- Versions and symbols ---- */
#define PERLLM_ABI_VERSION_MAJOR 1u
#define PERLLM_ABI_VERSION_MINOR 3u
/* major << 16 | minor: what perllm_plugin_abi_version returns. */
#define PERLLM_ABI_VERSION ((PERLLM_ABI_VERSION_MAJOR << 16) | PERLLM_ABI_VERSION_MINOR)
#define PERLLM_ABI_VERSION_SYMBOL "perllm_plugin_abi_version"
#define PERLLM_DECLARE_SYMBOL "perllm_plugin_declare"

/* ---- Constants ---- */
#define PERLLM_KIND_POLICY 1u
#define PERLLM_KIND_COST_MODEL 2u
#define PERLLM_FLAG_WANTS_ESTIMATES 1u
#define PERLLM_STATUS_OK 0u
#define PERLLM_STATUS_ERROR 1u
#define PERLLM_STATUS_PANIC 2u
#define PERLLM_TIER_EDGE 0u
#define PERLLM_TIER_CLOUD 1u
#define PERLLM_HW_CPU 0u
#define PERLLM_HW_GPU 1u
#define PERLLM_HW_NPU 2u
#define PERLLM_HW_UNKNOWN 0xFFFFFFFFu
#define PERLLM_ACTION_DEFER 0u
#define PERLLM_ACTION_ASSIGN 1u
#define PERLLM_ACTION_REJECT 2u
#define PERLLM_NO_SERVER 0xFFFFFFFFu

/* ---- Primitives ---- */

/* A borrowed UTF-8 string: pointer and length in bytes, NOT NUL-terminated. */
typedef struct PerllmStr {
    const uint8_t *ptr;
    size_t len;
} PerllmStr;

/* A string literal as a PerllmStr (a constant initialiser: usable in static declarations). */
#define PERLLM_STR(literal) { (const uint8_t *)(literal), sizeof(literal) - 1 }

/* A borrowed array: pointer and number of elements. Arrays of views have a stride given by the
 * view that holds them; index them with the perllm_slot_* accessors below. */
typedef struct PerllmSlice {
    const void *ptr;
    size_t len;
} PerllmSlice;

/* Hosted model indices of a server (sorted). */
typedef struct PerllmSliceU16 {
    const uint16_t *ptr;
    size_t len;
} PerllmSliceU16;

/* ---- Callbacks ---- */

typedef struct PerllmErrorSink {
    uint32_t struct_size;
    uint32_t reserved;
    void *ctx;
    /* Copies the message (the host keeps the first, at most 4 KiB). */
    void (*report)(void *ctx, PerllmStr message);
} PerllmErrorSink;

typedef struct PerllmStatSink {
    uint32_t struct_size;
    uint32_t reserved;
    void *ctx;
    void (*emit)(void *ctx, PerllmStr name, double value);
} PerllmStatSink;

/* ---- Views the host builds (read only; valid during the call) ---- */

typedef struct PerllmServerView {
    uint32_t struct_size;
    uint32_t id;
    uint32_t tier;          /* PERLLM_TIER_* */
    uint32_t max_batch;
    uint32_t device_count;
    uint32_t uploading;
    uint32_t queued;
    uint32_t running;
    uint32_t downloading;
    uint32_t reserved;
    PerllmSliceU16 models;  /* hosted model indices, sorted */
    uint64_t free_kv_bytes;
    uint64_t kv_capacity_bytes;
    uint64_t pending_output_tokens;
    uint64_t link_latency_ns;
    double bandwidth_estimate_bps;
    double recent_utilization;
    double power_idle_w;  /* device idle power x device count x the facility's PUE, W */
    double power_busy_w;  /* device busy power x device count x the facility's PUE, W */
    PerllmStr name;
    /* Since 1.1 (default PERLLM_HW_UNKNOWN): */
    uint32_t hardware_kind;
    uint32_t reserved_1_1;
} PerllmServerView;

typedef struct PerllmRequestView {
    uint32_t struct_size;
    uint16_t model;
    uint16_t slo;
    uint32_t prompt_tokens;
    uint32_t output_tokens;
    uint32_t defers;
    uint32_t reserved;
    uint64_t id;
    uint64_t arrival_ns;
    uint64_t deadline_ns;   /* counted from arrival */
    uint64_t input_bytes;
    uint64_t output_bytes;
} PerllmRequestView;

/* Phases are durations counted from now (PerllmSlotView.now_ns). */
typedef struct PerllmEstimateView {
    uint32_t struct_size;
    uint32_t valid;         /* 1: an estimate; 0: the server does not host the model */
    uint64_t upload_ns;
    uint64_t queue_ns;
    uint64_t prefill_ns;
    uint64_t decode_ns;
    uint64_t download_ns;
    double energy_transmission_j;
    double energy_inference_j;
    double energy_idle_j;
} PerllmEstimateView;

typedef struct PerllmSlotView {
    uint32_t struct_size;
    uint32_t reserved;
    uint64_t slot;
    uint64_t now_ns;
    PerllmSlice servers;    /* PerllmServerView, stride server_size */
    PerllmSlice requests;   /* PerllmRequestView, stride request_size */
    PerllmSlice estimates;  /* PerllmEstimateView, requests x servers, stride estimate_size */
    double energy_weights[3];
    uint32_t server_size;
    uint32_t request_size;
    uint32_t estimate_size;
    uint32_t placement_size;
    /* Since 1.3 (defaults from an older host: empty, 0): the in-place path. */
    PerllmSlice pending;        /* PerllmPending, stride pending_size; requests' order */
    PerllmSlice slo_deadlines;  /* uint64_t per SLO class, ns from arrival, by request.slo */
    uint32_t pending_size;
    uint32_t decision_size;
} PerllmSlotView;

/* Since 1.3: a pending request as the host keeps it, read in place (no struct_size: the
 * stride is PerllmSlotView.pending_size). Never grows; 4 bytes of padding after slo. */
typedef struct PerllmPendingRequest {
    uint64_t id;
    uint64_t arrival_ns;
    uint64_t input_bytes;
    uint64_t output_bytes;
    uint32_t prompt_tokens;
    uint32_t output_tokens;
    uint16_t model;
    uint16_t slo;           /* its deadline: perllm_slot_deadline(slot, slo) */
} PerllmPendingRequest;

/* Since 1.3: an element of PerllmSlotView.pending (fields are only appended after defers). */
typedef struct PerllmPending {
    PerllmPendingRequest request;
    uint32_t defers;
} PerllmPending;

/* Since 1.3: entry i of decide's `out` decides pending request i, written in place into the
 * host's own decisions (stride decision_size). Pre-filled {DEFER, NO_SERVER}. */
typedef struct PerllmDecision {
    uint32_t action;        /* PERLLM_ACTION_* */
    uint32_t server;        /* read only for PERLLM_ACTION_ASSIGN */
} PerllmDecision;

/* Entry i of `out` decides request i. Pre-filled {struct_size, DEFER, NO_SERVER, 0}. */
typedef struct PerllmPlacement {
    uint32_t struct_size;   /* the host's; leave it alone */
    uint32_t action;        /* PERLLM_ACTION_* */
    uint32_t server;
    uint32_t reserved;
} PerllmPlacement;

typedef struct PerllmOutcomeView {
    uint32_t struct_size;
    uint32_t server;
    uint32_t met;
    uint32_t reserved;
    uint64_t decided_ns;
    uint64_t ttft_ns;       /* from arrival */
    uint64_t total_ns;      /* from arrival */
    const PerllmRequestView *request;
    const PerllmEstimateView *phases;
} PerllmOutcomeView;

typedef struct PerllmHardwareView {
    uint32_t struct_size;
    uint32_t kind;          /* PERLLM_HW_* */
    double compute_flops;
    uint64_t memory_bytes;
    double memory_bandwidth_bytes_per_s;
    double power_idle_w;
    double power_busy_w;
    double compute_efficiency;
    double bandwidth_efficiency;
    PerllmStr name;
} PerllmHardwareView;

typedef struct PerllmModelView {
    uint32_t struct_size;
    uint32_t reserved;
    double params;
    double bytes_per_param;
    double weight_bytes;
    uint64_t kv_bytes_per_token;
    PerllmStr name;
} PerllmModelView;

typedef struct PerllmStepShapeView {
    uint32_t struct_size;
    uint32_t prefill_seqs;
    uint32_t decode_seqs;
    uint32_t reserved;
    uint64_t prefill_tokens;
    uint64_t kv_tokens;
} PerllmStepShapeView;

typedef struct PerllmEstimateInput {
    uint32_t struct_size;
    uint32_t device_count;
    uint32_t active_uploads;
    uint32_t queued;
    uint32_t running;
    uint32_t reserved;
    double bandwidth_bps;
    double energy_j_per_bit;
    const PerllmHardwareView *hardware;
    const PerllmModelView *model;
    const PerllmServerView *server;
    const PerllmRequestView *request;
} PerllmEstimateInput;

/* ---- Entry points ---- */

typedef void *(*PerllmPolicyCreateFn)(PerllmStr config, uint64_t seed, const PerllmErrorSink *err);
typedef void (*PerllmDestroyFn)(void *instance);
typedef uint32_t (*PerllmScheduleFn)(void *instance, const PerllmSlotView *slot,
                                     PerllmPlacement *out, size_t out_len,
                                     const PerllmErrorSink *err);
/* Since 1.3: decide a slot in place, from slot->pending (slot->requests is empty). */
typedef uint32_t (*PerllmDecideFn)(void *instance, const PerllmSlotView *slot,
                                   PerllmDecision *out, size_t out_len,
                                   const PerllmErrorSink *err);
typedef uint32_t (*PerllmObserveFn)(void *instance, const PerllmOutcomeView *outcome,
                                    const PerllmErrorSink *err);
typedef uint32_t (*PerllmStatsFn)(void *instance, const PerllmStatSink *sink);
typedef void *(*PerllmCostModelCreateFn)(PerllmStr config, const PerllmErrorSink *err);
typedef uint32_t (*PerllmStepNsFn)(void *instance, const PerllmHardwareView *hardware,
                                   uint32_t device_count, const PerllmModelView *model,
                                   const PerllmStepShapeView *shape, uint64_t *out_ns,
                                   const PerllmErrorSink *err);
typedef uint32_t (*PerllmEstimateFn)(void *instance, const PerllmEstimateInput *input,
                                     PerllmEstimateView *out, const PerllmErrorSink *err);

/* ---- What the plugin builds (static, for the life of the process) ---- */

typedef struct PerllmPolicyVTable {
    uint32_t struct_size;   /* sizeof(PerllmPolicyVTable) */
    uint32_t reserved;
    PerllmPolicyCreateFn create;    /* required */
    PerllmDestroyFn destroy;        /* required */
    PerllmScheduleFn schedule;      /* required */
    PerllmObserveFn observe;        /* optional (NULL) */
    PerllmStatsFn stats;            /* optional (NULL) */
    /* Since 1.3, optional (NULL): a 1.3 host calls it instead of schedule, which an older
     * host calls and which stays required. */
    PerllmDecideFn decide;
} PerllmPolicyVTable;

typedef struct PerllmCostModelVTable {
    uint32_t struct_size;
    uint32_t reserved;
    PerllmCostModelCreateFn create; /* required */
    PerllmDestroyFn destroy;        /* required */
    PerllmStepNsFn step_ns;         /* required */
    PerllmEstimateFn estimate;      /* optional (NULL) */
} PerllmCostModelVTable;

typedef struct PerllmPluginDecl {
    uint32_t struct_size;   /* sizeof(PerllmPluginDecl) */
    uint32_t kind;          /* PERLLM_KIND_* */
    PerllmStr name;         /* 1-64 ASCII letters, digits, '-', '_', '.' */
    PerllmStr version;
    PerllmStr description;
    uint32_t flags;         /* PERLLM_FLAG_* */
    uint32_t reserved;
    const PerllmPolicyVTable *policy;         /* KIND_POLICY, else NULL */
    const PerllmCostModelVTable *cost_model;  /* KIND_COST_MODEL, else NULL */
    /* Since 1.2 (default: empty, not declared): parameters, one per line,
     * "name (default): meaning", shown by `perllm plugins info`. */
    PerllmStr params;
} PerllmPluginDecl;

typedef struct PerllmPluginList {
    uint32_t struct_size;
    uint32_t reserved;
    PerllmSlice plugins;    /* PerllmPluginDecl, stride: the first one's struct_size */
} PerllmPluginList;

/* The two symbols a plugin library exports. */
PERLLM_EXPORT uint32_t perllm_plugin_abi_version(void);
PERLLM_EXPORT const PerllmPluginList *perllm_plugin_declare(void);

/* ---- Helpers ---- */

/* Does the struct at p (which the other side built) provide `field`? */
#define PERLLM_HAS_FIELD(p, Type, field) \
    (offsetof(Type, field) + sizeof(((Type *)0)->field) <= (size_t)(p)->struct_size)

static inline const PerllmServerView *perllm_slot_server(const PerllmSlotView *s, size_t i) {
    return (const PerllmServerView *)((const char *)s->servers.ptr + i * s->server_size);
}
static inline const PerllmRequestView *perllm_slot_request(const PerllmSlotView *s, size_t i) {
    return (const PerllmRequestView *)((const char *)s->requests.ptr + i * s->request_size);
}
/* The estimate of request r on server srv (NULL if the policy did not ask for estimates). */
static inline const PerllmEstimateView *perllm_slot_estimate(const PerllmSlotView *s, size_t r,
                                                             size_t srv) {
    if (s->estimates.len == 0) return NULL;
    return (const PerllmEstimateView *)((const char *)s->estimates.ptr +
                                        (r * s->servers.len + srv) * s->estimate_size);
}
static inline PerllmPlacement *perllm_slot_placement(const PerllmSlotView *s, PerllmPlacement *out,
                                                     size_t i) {
    return (PerllmPlacement *)((char *)out + i * s->placement_size);
}
/* Since 1.3: pending request i (NULL from an older host or out of range). */
static inline const PerllmPending *perllm_slot_pending(const PerllmSlotView *s, size_t i) {
    if (!PERLLM_HAS_FIELD(s, PerllmSlotView, decision_size) || i >= s->pending.len) return NULL;
    return (const PerllmPending *)((const char *)s->pending.ptr + i * s->pending_size);
}
/* Since 1.3: decision i of decide's `out`. */
static inline PerllmDecision *perllm_slot_decision(const PerllmSlotView *s, PerllmDecision *out,
                                                   size_t i) {
    return (PerllmDecision *)((char *)out + i * s->decision_size);
}
/* Since 1.3: the deadline of SLO class `slo`, ns counted from arrival (0 if unknown). */
static inline uint64_t perllm_slot_deadline(const PerllmSlotView *s, uint16_t slo) {
    if (!PERLLM_HAS_FIELD(s, PerllmSlotView, decision_size) || slo >= s->slo_deadlines.len)
        return 0;
    return ((const uint64_t *)s->slo_deadlines.ptr)[slo];
}
/* Does server `srv` host model `m`? */
static inline int perllm_server_hosts(const PerllmServerView *srv, uint16_t m) {
    size_t lo = 0, hi = srv->models.len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (srv->models.ptr[mid] == m) return 1;
        if (srv->models.ptr[mid] < m) lo = mid + 1; else hi = mid;
    }
    return 0;
}
/* Report an error message (a NUL-terminated C string) through the sink. */
static inline void perllm_report(const PerllmErrorSink *err, const char *message) {
    size_t n = 0;
    if (err == NULL || message == NULL) return;
    while (message[n] != '\0') n++;
    PerllmStr s = { (const uint8_t *)message, n };
    err->report(err->ctx, s);
}

#ifdef __cplusplus
}
#endif

#endif /* PERLLM_PLUGIN_H */
