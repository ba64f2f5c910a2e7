/*
 * A profile written out: collapsed stacks with counts and speedscope's
 * file format (docs/OUTPUTS.md).  The SVG flame graph is in
 * flamegraph_svg.c.
 *
 * Every name is written the way dump's collapsed form writes it, so one
 * stack reads the same in every output; target text is escaped for each
 * format (au_render_out.h).
 */
#include <string.h>

#include "asyncunwind.h"
#include "au_internal.h"
#include "au_render_out.h"
#include "au_profile.h"
#include "au_profile_text.h"

#define NONE UINT32_MAX

void au_out_esc(au_out *o, const char *s, size_t n, au_esc esc) {
    if (esc == AU_ESC_JSON) au_out_json(o, s, n);
    else if (esc == AU_ESC_XML) au_out_xml(o, s, n);
    else au_out_clean(o, s, n, 1);
}

void au_pname_put_location(au_out *o, const au_pname *n, au_esc esc) {
    if (n->file) au_out_esc(o, n->file, n->file_len, esc);
    if (n->line >= 0) au_out_putf(o, ":%llu", (unsigned long long)n->line);
    else au_out_puts(o, ":?");
}

static void put_task_name(au_out *o, const au_pname *n, au_esc esc) {
    if (n->text_len) au_out_esc(o, n->text, n->text_len, esc);
    else au_out_putf(o, "<task 0x%llx>", (unsigned long long)n->id);
}

void au_pname_put(au_out *o, const au_pname *n, au_esc esc, int with_file) {
    switch (n->kind) {
    case AU_PNAME_THREAD:
        au_out_putf(o, n->flags & AU_PNAME_NATIVE ? "thread %llu" : "thread 0x%llx",
                   (unsigned long long)n->id);
        if (n->text) {
            au_out_puts(o, " (");
            au_out_esc(o, n->text, n->text_len, esc);
            au_out_puts(o, ")");
        }
        break;
    case AU_PNAME_FRAME:
        if (!n->text) {
            au_out_putf(o, "<unknown> (0x%llx)", (unsigned long long)n->id);
            break;
        }
        au_out_esc(o, n->text, n->text_len, esc);
        if (with_file) {
            au_out_puts(o, " (");
            au_pname_put_location(o, n, esc);
            au_out_puts(o, ")");
        }
        break;
    case AU_PNAME_TASK:
        au_out_puts(o, "[");
        put_task_name(o, n, esc);
        au_out_puts(o, "]");
        break;
    case AU_PNAME_PROCESS:
        au_out_putf(o, "process %llu", (unsigned long long)n->id);
        break;
    case AU_PNAME_CYCLE:
        au_out_puts(o, "[cycle -> ");
        put_task_name(o, n, esc);
        au_out_puts(o, "]");
        break;
    default:
        au_out_esc(o, n->text ? n->text : "", n->text_len, esc);
        break;
    }
}

/* One line per stack: its names joined by ';', a space and its count. */
static int write_collapsed(const au_profile *p, au_out *o) {
    uint32_t ns = au_profile_nstacks(p);
    for (uint32_t i = 0; i < ns && o->rc == AU_OK; i++) {
        const uint32_t *ids;
        uint32_t n;
        uint64_t count = au_profile_stack(p, i, &ids, &n);
        if (!count) continue;
        for (uint32_t j = 0; j < n; j++) {
            au_pname nm;
            au_profile_name(p, ids[j], &nm);
            if (j) au_out_put(o, ";", 1);
            au_pname_put(o, &nm, AU_ESC_COLLAPSED, 1);
        }
        au_out_putf(o, " %llu\n", (unsigned long long)count);
    }
    return AU_OK;
}

/* A stack by the profile it goes to: its leading process and thread
 * names (NONE where absent), then its index. */
typedef struct group_key {
    uint32_t process, thread, stack, lead;
} group_key;

static int cmp_group(const void *a, const void *b) {
    const group_key *x = a, *y = b;
    if (x->process != y->process) return x->process < y->process ? -1 : 1;
    if (x->thread != y->thread) return x->thread < y->thread ? -1 : 1;
    return x->stack < y->stack ? -1 : x->stack > y->stack;
}

static uint32_t name_kind(const au_profile *p, uint32_t id) {
    au_pname nm;
    au_profile_name(p, id, &nm);
    return nm.kind;
}

/* Its key: a stack starts with a process (AU_PROFILE_PROCESS) and a thread,
 * a thread, or neither (the dropped stack). */
static group_key group_of(const au_profile *p, uint32_t stack, const uint32_t *ids, uint32_t n) {
    group_key k = {NONE, NONE, stack, 0};
    if (k.lead < n && name_kind(p, ids[k.lead]) == AU_PNAME_PROCESS) k.process = ids[k.lead++];
    if (k.lead < n && name_kind(p, ids[k.lead]) == AU_PNAME_THREAD) k.thread = ids[k.lead++];
    return k;
}

static void put_group_name(au_out *o, const au_profile *p, const group_key *k, const uint32_t *ids) {
    for (uint32_t i = 0; i < (k->lead ? k->lead : 1); i++) {
        au_pname nm;
        au_profile_name(p, ids[i], &nm);
        if (i) au_out_puts(o, " ");
        au_pname_put(o, &nm, AU_ESC_JSON, 0);
    }
}

/* speedscope's file format: every name but the processes and threads is a
 * shared frame; each thread (of each process) is a "sampled" profile whose
 * samples are its stacks without them (root first, as the format wants)
 * and whose weights are their counts.  The dropped stack, having no
 * thread, is a profile of its own. */
static int write_speedscope(const au_profile *p, const char *title, au_out *o) {
    au_allocator a = au_profile_alloc(p);
    uint32_t nn = au_profile_nnames(p), ns = au_profile_nstacks(p);
    uint32_t *frame = a.realloc(a.ud, NULL, 0, ((size_t)nn + 1) * sizeof *frame);
    group_key *order = a.realloc(a.ud, NULL, 0, ((size_t)ns + 1) * sizeof *order);
    if (!frame || !order) {
        AU_FREE_ARRAY(&a, frame, (size_t)nn + 1);
        AU_FREE_ARRAY(&a, order, (size_t)ns + 1);
        return AU_ERR_NOMEM;
    }
    au_out_puts(o, "{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\","
                  "\"exporter\":\"asyncunwind\",\"name\":\"");
    au_out_json(o, title ? title : "asyncunwind", title ? strlen(title) : 11);
    au_out_puts(o, "\",\"activeProfileIndex\":0,\"shared\":{\"frames\":[");
    uint32_t nf = 0;
    for (uint32_t i = 0; i < nn; i++) {
        au_pname nm;
        au_profile_name(p, i, &nm);
        frame[i] = NONE;
        if (nm.kind == AU_PNAME_THREAD || nm.kind == AU_PNAME_PROCESS) continue;
        frame[i] = nf;
        au_out_puts(o, nf++ ? ",\n{\"name\":\"" : "\n{\"name\":\"");
        au_pname_put(o, &nm, AU_ESC_JSON, 0);
        au_out_puts(o, "\"");
        if (nm.kind == AU_PNAME_FRAME && nm.file) {
            au_out_puts(o, ",\"file\":\"");
            au_out_json(o, nm.file, nm.file_len);
            au_out_puts(o, "\"");
            if (nm.line >= 0) au_out_putf(o, ",\"line\":%llu", (unsigned long long)nm.line);
        }
        au_out_puts(o, "}");
    }
    au_out_puts(o, "]},\"profiles\":[");
    uint32_t no = 0;
    for (uint32_t i = 0; i < ns; i++) {
        const uint32_t *ids;
        uint32_t n;
        if (au_profile_stack(p, i, &ids, &n) && n) order[no++] = group_of(p, i, ids, n);
    }
    au_sort(order, no, sizeof *order, cmp_group);
    for (uint32_t g = 0, nprof = 0; g < no && o->rc == AU_OK; nprof++) {
        uint32_t end = g;
        uint64_t total = 0;
        while (end < no && !cmp_group(&(group_key){order[g].process, order[g].thread, 0, 0},
                                      &(group_key){order[end].process, order[end].thread, 0, 0})) {
            const uint32_t *ids;
            uint32_t n;
            total += au_profile_stack(p, order[end].stack, &ids, &n);
            end++;
        }
        const uint32_t *first;
        uint32_t nfirst;
        au_profile_stack(p, order[g].stack, &first, &nfirst);
        /* The process and thread are the profile's name, not frames. */
        au_out_puts(o, nprof ? ",\n{\"type\":\"sampled\",\"name\":\"" : "\n{\"type\":\"sampled\",\"name\":\"");
        put_group_name(o, p, &order[g], first);
        au_out_putf(o, "\",\"unit\":\"none\",\"startValue\":0,\"endValue\":%llu,\"samples\":[",
                   (unsigned long long)total);
        for (uint32_t k = g; k < end; k++) {
            const uint32_t *ids;
            uint32_t n, skip = order[k].lead;
            au_profile_stack(p, order[k].stack, &ids, &n);
            au_out_puts(o, k > g ? ",\n[" : "\n[");
            for (uint32_t j = skip; j < n; j++)
                au_out_putf(o, j > skip ? ",%llu" : "%llu", (unsigned long long)frame[ids[j]]);
            au_out_puts(o, "]");
        }
        au_out_puts(o, "],\"weights\":[");
        for (uint32_t k = g; k < end; k++) {
            const uint32_t *ids;
            uint32_t n;
            au_out_putf(o, k > g ? ",%llu" : "%llu",
                       (unsigned long long)au_profile_stack(p, order[k].stack, &ids, &n));
        }
        au_out_puts(o, "]}");
        g = end;
    }
    au_out_puts(o, "]}\n");
    a.realloc(a.ud, frame, ((size_t)nn + 1) * sizeof *frame, 0);
    a.realloc(a.ud, order, ((size_t)ns + 1) * sizeof *order, 0);
    return AU_OK;
}

int au_profile_write(const au_profile *p, uint32_t format, const char *title,
                     int (*write)(void *ud, const void *buf, size_t len), void *ud) {
    if (!p || !write) return AU_ERR_ARG;
    au_out o;
    au_out_init(&o, write, ud);
    int rc;
    switch (format) {
    case AU_FORMAT_COLLAPSED: rc = write_collapsed(p, &o); break;
    case AU_FORMAT_SPEEDSCOPE: rc = write_speedscope(p, title, &o); break;
    case AU_FORMAT_SVG: rc = au_profile_write_svg(p, title, &o); break;
    default: return AU_ERR_ARG;
    }
    au_out_flush(&o);
    return rc ? rc : o.rc;
}
