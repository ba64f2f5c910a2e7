#include "fake_target.h"

#include <stdlib.h>
#include <string.h>

static int ft_read(au_memsrc *self, au_read *reads, uint32_t n) {
    fake_target *t = (fake_target *)self;
    int first = AU_OK;
    t->base.stats.requests += n;
    t->base.stats.syscalls++;
    for (uint32_t i = 0; i < n; i++) {
        au_read *r = &reads[i];
        if (r->addr >= FT_BASE && r->addr - FT_BASE <= t->brk - FT_BASE &&
            r->len <= t->brk - r->addr) {
            memcpy(r->buf, t->mem + (r->addr - FT_BASE), r->len);
            r->status = AU_OK;
        } else {
            r->status = AU_ERR_READ;
            t->base.stats.failures++;
            if (first == AU_OK) first = AU_ERR_READ;
        }
    }
    return first;
}

static void ft_destroy(au_memsrc *self) { (void)self; }

uint64_t ft_alloc(fake_target *t, uint32_t size) {
    uint64_t a = t->brk;
    t->brk += ((uint64_t)size + 15) & ~15ull;
    if (t->brk - FT_BASE > FT_SIZE) abort();
    return a;
}

void ft_put64(fake_target *t, uint64_t addr, uint64_t v) { memcpy(t->mem + (addr - FT_BASE), &v, 8); }
void ft_put32(fake_target *t, uint64_t addr, uint32_t v) { memcpy(t->mem + (addr - FT_BASE), &v, 4); }

static uint64_t type_named(fake_target *t, const char *name) {
    uint64_t type = ft_alloc(t, t->off->type_tp_name + 8);
    uint64_t s = ft_alloc(t, (uint32_t)strlen(name) + 1);
    memcpy(t->mem + (s - FT_BASE), name, strlen(name) + 1);
    ft_put64(t, type + t->off->type_tp_name, s);
    return type;
}

uint64_t ft_str(fake_target *t, const char *s) {
    const au_py_offsets *o = t->off;
    uint32_t n = (uint32_t)strlen(s);
    uint64_t a = ft_alloc(t, o->sizeof_ascii + n + 1);
    ft_put64(t, a + o->ob_type, t->str_type);
    ft_put64(t, a + o->unicode_length, n);
    uint32_t state = 1u << o->unicode_kind_shift | 1u << o->unicode_compact_shift |
                     1u << o->unicode_ascii_shift;
    ft_put32(t, a + o->unicode_state, state);
    memcpy(t->mem + (a + o->sizeof_ascii - FT_BASE), s, n);
    return a;
}

uint64_t ft_code(fake_target *t, const char *name, const char *file, int32_t firstlineno) {
    const au_py_offsets *o = t->off;
    uint64_t code = ft_alloc(t, o->sizeof_code + 64);
    uint64_t table = ft_alloc(t, o->bytes_ob_sval + 8);
    ft_put64(t, table + o->var_ob_size, 0);
    ft_put64(t, code + o->ob_type, t->code_type);
    ft_put64(t, code + o->code_name, ft_str(t, name));
    if (o->code_qualname != AU_PYOFF_ABSENT) ft_put64(t, code + o->code_qualname, ft_str(t, name));
    ft_put64(t, code + o->code_filename, ft_str(t, file));
    ft_put32(t, code + o->code_firstlineno, (uint32_t)firstlineno);
    ft_put64(t, code + o->code_linetable, table);
    return code;
}

uint64_t ft_frame(fake_target *t, uint64_t code, uint64_t previous) {
    return ft_frame_at(t, ft_alloc(t, t->off->frame_header_size + 16), code, previous);
}

uint64_t ft_chunk(fake_target *t, uint32_t frames) {
    const au_py_offsets *o = t->off;
    uint32_t size = o->chunk_data + frames * (o->frame_header_size + 16);
    uint64_t c = ft_alloc(t, size);
    ft_put64(t, c + o->chunk_previous, 0);
    ft_put64(t, c + o->chunk_size, size);
    ft_put64(t, t->tstate + o->tstate_datastack_chunk, c);
    ft_put64(t, t->tstate + o->tstate_datastack_top, c + size);
    return c + o->chunk_data;
}

uint64_t ft_entry(fake_target *t) {
    const au_py_offsets *o = t->off;
    if (t->entry || !o->frame_skip_owners) return t->entry;
    uint8_t owner = 0;
    while (!(o->frame_skip_owners >> owner & 1)) owner++;
    t->entry = ft_alloc(t, o->frame_header_size + 16);
    t->mem[t->entry + o->frame_owner - FT_BASE] = owner; /* previous and code: 0 */
    return t->entry;
}

uint64_t ft_frame_at(fake_target *t, uint64_t f, uint64_t code, uint64_t previous) {
    const au_py_offsets *o = t->off;
    if (o->frame_entry != AU_PYOFF_ABSENT) t->mem[f + o->frame_entry - FT_BASE] = previous == 0;
    if (!previous) previous = ft_entry(t);
    ft_put64(t, f + o->frame_previous, previous);
    ft_put64(t, f + o->frame_code, code);
    /* "Nothing executed yet": the instruction before the first one. */
    ft_put64(t, f + o->frame_instr, code + o->code_code_adaptive - 2);
    if (o->frame_owner != AU_PYOFF_ABSENT)
        t->mem[f + o->frame_owner - FT_BASE] = (uint8_t)o->frame_owner_thread;
    return f;
}

void ft_set_current(fake_target *t, uint64_t frame) {
    const au_py_offsets *o = t->off;
    uint64_t holder = t->tstate;
    if (o->cframe_current_frame != AU_PYOFF_ABSENT) {
        holder = ft_alloc(t, o->cframe_current_frame + 8);
        ft_put64(t, t->tstate + o->tstate_frame, holder);
        ft_put64(t, holder + o->cframe_current_frame, frame);
    } else {
        ft_put64(t, t->tstate + o->tstate_frame, frame);
    }
}

fake_target *ft_new(uint32_t version_hex) {
    const au_py_offsets *o = au_py_offsets_for(version_hex);
    /* Layouts with a debug-offsets blob (3.13+) or PyFrameObject frames
     * (3.9/3.10) are not modelled here. */
    if (!o || o->debug || o->instr_kind != AU_PY_INSTR_PREV_INSTR) return NULL;
    fake_target *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->base.read = ft_read;
    t->base.destroy = ft_destroy;
    t->off = o;
    t->brk = FT_BASE + 64; /* keep address 0 and FT_BASE itself unused */
    t->code_type = type_named(t, "code");
    t->str_type = type_named(t, "str");
    t->bytes_type = type_named(t, "bytes");
    t->runtime = ft_alloc(t, o->runtime_interpreters_head + 8);
    t->interp = ft_alloc(t, o->sizeof_interp);
    t->tstate = ft_alloc(t, o->sizeof_tstate);
    ft_put64(t, t->runtime + o->runtime_interpreters_head, t->interp);
    ft_put64(t, t->interp + o->interp_threads_head, t->tstate);
    ft_put64(t, t->tstate + o->tstate_thread_id, 0x7f0000001111ull);
    if (o->tstate_native_thread_id != AU_PYOFF_ABSENT)
        ft_put64(t, t->tstate + o->tstate_native_thread_id, 4242);
    return t;
}

void ft_free(fake_target *t) { free(t); }
