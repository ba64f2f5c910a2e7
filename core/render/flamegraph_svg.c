/*
 * The SVG flame graph of a profile: one self-contained file, with a small
 * script of its own for zoom, search and hover details (au_flamegraph_js.h),
 * and nothing loaded from elsewhere (docs/OUTPUTS.md).
 *
 * The profile's stacks are merged into a tree (a frame per distinct path
 * from the root, children in the order first seen, so the output is
 * deterministic; the tree grows as it meets new paths), laid out with the root at the bottom, one row per
 * depth, each frame as wide as its share of the samples.  Frames narrower
 * than 0.1 px at full width are left out, with everything above them, as
 * flamegraph.pl does: they could not be seen or clicked.
 *
 * Names come from the target: every byte of them goes through au_out_xml,
 * and the script only reads them back as text (textContent, getAttribute),
 * never as markup or code.  The script itself is a fixed string.
 */
#include <string.h>

#include "asyncunwind.h"
#include "au_flamegraph_js.h"
#include "au_internal.h"
#include "au_profile_text.h"

#define NONE UINT32_MAX
#define WIDTH 1200
#define PAD 10
#define ROW 16
#define TOP 50
#define BOTTOM 34
#define CHAR_PX 7   /* the estimated width of a 12 px Verdana character */
#define MIN_PX 0.1
#define TITLE_CHARS 90 /* 17 px characters between the two buttons */

typedef struct node {
    uint32_t name;       /* NONE for the root, "all" */
    uint32_t parent;
    uint32_t first, last, next; /* children, in the order first seen */
    uint32_t depth;
    uint64_t total;      /* samples of every stack through it */
    uint64_t x;          /* samples left of it, the layout's unit */
} node;

typedef struct tree {
    au_allocator a;
    node *nodes;
    uint32_t n, cap;
    uint32_t *slots; /* (parent, name) -> node + 1; size mask + 1 */
    uint32_t mask;
    uint32_t max_depth;
} tree;

static uint64_t child_hash(uint32_t parent, uint32_t name) {
    return au_mix64((uint64_t)parent << 32 | name);
}

static void tree_free(tree *t) {
    AU_FREE_ARRAY(&t->a, t->nodes, t->cap);
    AU_FREE_ARRAY(&t->a, t->slots, (size_t)t->mask + 1);
}

/* Room for one more node: the node array and its index (at most half
 * full) double together, and the index is refilled from the nodes. */
static int tree_reserve(tree *t) {
    if (t->n < t->cap) return AU_OK;
    if (t->cap >= UINT32_MAX / 4) return AU_ERR_LIMIT;
    uint32_t ncap = t->cap ? t->cap * 2 : 256, size = ncap * 2;
    node *nodes = t->a.realloc(t->a.ud, t->nodes, (size_t)t->cap * sizeof *nodes,
                               (size_t)ncap * sizeof *nodes);
    if (!nodes) return AU_ERR_NOMEM;
    t->nodes = nodes;
    t->cap = ncap;
    uint32_t *slots = t->a.realloc(t->a.ud, NULL, 0, (size_t)size * sizeof *slots);
    if (!slots) return AU_ERR_NOMEM;
    AU_FREE_ARRAY(&t->a, t->slots, (size_t)t->mask + 1);
    t->slots = slots;
    t->mask = size - 1;
    memset(slots, 0, (size_t)size * sizeof *slots);
    for (uint32_t k = 1; k < t->n; k++) {
        uint32_t i = (uint32_t)child_hash(t->nodes[k].parent, t->nodes[k].name) & t->mask;
        while (slots[i]) i = (i + 1) & t->mask;
        slots[i] = k + 1;
    }
    return AU_OK;
}

static int tree_init(tree *t, au_allocator a) {
    memset(t, 0, sizeof *t);
    t->a = a;
    int rc = tree_reserve(t);
    if (rc != AU_OK) {
        tree_free(t);
        return rc;
    }
    node root = {NONE, NONE, NONE, NONE, NONE, 0, 0, 0};
    t->nodes[t->n++] = root;
    return AU_OK;
}

/* The child of `parent` named `name`, added if new; NONE with *rc set when
 * memory runs out. */
static uint32_t tree_child(tree *t, uint32_t parent, uint32_t name, int *rc) {
    uint32_t i = (uint32_t)child_hash(parent, name) & t->mask;
    for (; t->slots[i]; i = (i + 1) & t->mask) {
        const node *c = &t->nodes[t->slots[i] - 1];
        if (c->parent == parent && c->name == name) return t->slots[i] - 1;
    }
    if (t->n == t->cap) {
        if ((*rc = tree_reserve(t)) != AU_OK) return NONE;
        i = (uint32_t)child_hash(parent, name) & t->mask; /* the index was rebuilt */
        while (t->slots[i]) i = (i + 1) & t->mask;
    }
    uint32_t k = t->n++;
    node *c = &t->nodes[k], *p = &t->nodes[parent];
    c->name = name;
    c->parent = parent;
    c->first = c->last = c->next = NONE;
    c->depth = p->depth + 1;
    c->total = 0;
    c->x = 0;
    if (p->last == NONE) p->first = k;
    else t->nodes[p->last].next = k;
    p->last = k;
    t->slots[i] = k + 1;
    if (c->depth > t->max_depth) t->max_depth = c->depth;
    return k;
}

static int tree_build(tree *t, const au_profile *p) {
    uint32_t ns = au_profile_nstacks(p);
    int rc = tree_init(t, au_profile_alloc(p));
    if (rc != AU_OK) return rc;
    for (uint32_t i = 0; i < ns; i++) {
        const uint32_t *ids;
        uint32_t n;
        uint64_t count = au_profile_stack(p, i, &ids, &n);
        if (!count) continue;
        t->nodes[0].total += count;
        uint32_t cur = 0;
        for (uint32_t j = 0; j < n; j++) {
            cur = tree_child(t, cur, ids[j], &rc);
            if (cur == NONE) {
                tree_free(t);
                return rc;
            }
            t->nodes[cur].total += count;
        }
    }
    /* Parents come before their children, so one pass in index order
     * places every frame after its parent was placed. */
    for (uint32_t i = 0; i < t->n; i++) {
        uint64_t x = t->nodes[i].x;
        for (uint32_t c = t->nodes[i].first; c != NONE; c = t->nodes[c].next) {
            t->nodes[c].x = x;
            x += t->nodes[c].total;
        }
    }
    return AU_OK;
}

/* Deterministic colours from the name's bytes (FNV-1a): warm hues for
 * code, blues for tasks, greys for threads and the root, and a muted red
 * for notes (cycles, truncation, partial stacks, dropped samples). */
static void put_colour(au_out *o, const au_pname *n, int is_root) {
    uint32_t h = 2166136261u;
    const unsigned char *s = (const unsigned char *)(n->text ? n->text : "");
    for (uint32_t i = 0; i < n->text_len; i++) h = (h ^ s[i]) * 16777619u;
    h ^= (uint32_t)n->id * 2654435761u;
    unsigned v1 = h & 0xff, v2 = h >> 8 & 0xff, v3 = h >> 16 & 0xff;
    unsigned r, g, b;
    if (is_root || n->kind == AU_PNAME_THREAD) r = g = b = 170 + v1 * 40 / 255;
    else if (n->kind == AU_PNAME_TASK) r = 60 + v1 * 50 / 255, g = 130 + v2 * 60 / 255, b = 215 + v3 * 40 / 255;
    else if (n->kind == AU_PNAME_FRAME) r = 205 + v1 * 50 / 255, g = v2 * 190 / 255, b = v3 * 55 / 255;
    else r = 200, g = 110 + v1 * 40 / 255, b = 140 + v2 * 40 / 255;
    au_out_putf(o, "rgb(%llu,", r);
    au_out_putf(o, "%llu,", g);
    au_out_putf(o, "%llu)", b);
}

/* A fixed-point number with two decimals (values are small and >= 0). */
static void put_fixed(au_out *o, double v) {
    unsigned long long c = (unsigned long long)(v * 100 + 0.5);
    au_out_putf(o, "%llu", c / 100);
    au_out_putf(o, ".%02llu", c % 100);
}

static void put_percent(au_out *o, uint64_t part, uint64_t total) {
    put_fixed(o, total ? (double)part * 100.0 / (double)total : 0);
    au_out_puts(o, "%");
}

/* The head of a label: the first bytes written, the rest only noted. */
typedef struct label_buf {
    char buf[WIDTH / CHAR_PX * 4 + 8];
    size_t len;
    int cut;
} label_buf;

static int keep_head(void *ud, const void *buf, size_t len) {
    label_buf *lb = ud;
    size_t k = sizeof lb->buf - lb->len < len ? sizeof lb->buf - lb->len : len;
    memcpy(lb->buf + lb->len, buf, k);
    lb->len += k;
    if (k < len) lb->cut = 1;
    return 0;
}

/* The label: as many characters of the name as fit the frame (counting
 * UTF-8 characters, never splitting one), ".." when cut.  The script
 * redoes this on zoom. */
static void put_label(au_out *o, const au_pname *n, int is_root, double px) {
    long fit = (long)((px - 6) / CHAR_PX);
    if (fit < 3) return;
    if (is_root) {
        au_out_puts(o, "all");
        return;
    }
    /* Only the first characters can show: keep the name's first bytes. */
    label_buf lb;
    lb.len = 0;
    lb.cut = 0;
    au_out label;
    au_out_init(&label, keep_head, &lb);
    au_pname_put(&label, n, AU_ESC_COLLAPSED, 0);
    au_out_flush(&label);
    size_t len = lb.len, i = 0;
    long chars = 0;
    const char *text = lb.buf;
    while (i < len) {
        size_t k = au_utf8_len((const unsigned char *)text + i, len - i);
        i += k ? k : 1;
        chars++;
    }
    if (chars <= fit && !lb.cut) {
        au_out_xml(o, text, len);
        return;
    }
    for (i = 0, chars = 0; i < len && chars < fit - 2; chars++) {
        size_t k = au_utf8_len((const unsigned char *)text + i, len - i);
        i += k ? k : 1;
    }
    au_out_xml(o, text, i);
    au_out_puts(o, "..");
}

/* The title, cut to what fits between the buttons (a command line can be
 * long); never inside a UTF-8 character. */
static void put_title(au_out *o, const char *title) {
    size_t len = strlen(title), i = 0;
    long chars = 0;
    while (i < len && chars < TITLE_CHARS) {
        size_t k = au_utf8_len((const unsigned char *)title + i, len - i);
        i += k ? k : 1;
        chars++;
    }
    au_out_xml(o, title, i);
    if (i < len) au_out_puts(o, "..");
}

static void put_frame(au_out *o, const au_profile *p, const tree *t, uint32_t k,
                      double scale, uint32_t height) {
    const node *nd = &t->nodes[k];
    au_pname n;
    int is_root = nd->name == NONE;
    if (is_root) memset(&n, 0, sizeof n);
    else au_profile_name(p, nd->name, &n);
    double x = PAD + (double)nd->x * scale, w = (double)nd->total * scale;
    uint32_t y = height - BOTTOM - (nd->depth + 1) * ROW;
    static const char *const kinds[] = {"h", "c", "t", "m", "m"};
    au_out_puts(o, "<g class=\"f\" data-k=\"");
    au_out_puts(o, is_root ? "r" : kinds[n.kind <= AU_PNAME_MARK ? n.kind : AU_PNAME_MARK]);
    au_out_putf(o, "\" data-x=\"%llu\"", (unsigned long long)nd->x);
    au_out_putf(o, " data-s=\"%llu\" data-n=\"", (unsigned long long)nd->total);
    if (is_root) au_out_puts(o, "all");
    else au_pname_put(o, &n, AU_ESC_XML, 0);
    au_out_puts(o, "\"");
    if (!is_root && n.kind == AU_PNAME_FRAME && n.text) {
        au_out_puts(o, " data-l=\"");
        au_pname_put_location(o, &n, AU_ESC_XML);
        au_out_puts(o, "\"");
    }
    au_out_puts(o, "><title>");
    if (is_root) au_out_puts(o, "all");
    else au_pname_put(o, &n, AU_ESC_XML, 1);
    au_out_putf(o, "\n%llu samples, ", (unsigned long long)nd->total);
    put_percent(o, nd->total, t->nodes[0].total);
    au_out_puts(o, "</title><rect x=\"");
    put_fixed(o, x);
    au_out_puts(o, "\" y=\"");
    au_out_putf(o, "%llu\" width=\"", y);
    put_fixed(o, w);
    au_out_putf(o, "\" height=\"%llu\" rx=\"2\" fill=\"", ROW - 1);
    put_colour(o, &n, is_root);
    au_out_puts(o, "\"/><text x=\"");
    put_fixed(o, x + 3);
    au_out_putf(o, "\" y=\"%llu\">", y + 11);
    put_label(o, &n, is_root, w);
    au_out_puts(o, "</text></g>\n");
}

int au_profile_write_svg(const au_profile *p, const char *title, au_out *o) {
    tree t;
    int rc = tree_build(&t, p);
    if (rc != AU_OK) return rc;
    uint64_t total = t.nodes[0].total;
    uint32_t height = TOP + (t.max_depth + 1) * ROW + BOTTOM;
    double scale = total ? (double)(WIDTH - 2 * PAD) / (double)total : 0;
    au_out_puts(o, "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
                  "<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\"");
    au_out_putf(o, " width=\"%llu\"", WIDTH);
    au_out_putf(o, " height=\"%llu\"", height);
    au_out_putf(o, " viewBox=\"0 0 %llu", WIDTH);
    au_out_putf(o, " %llu\"", height);
    au_out_putf(o, " data-total=\"%llu\">\n", (unsigned long long)total);
    for (const char *const *l = flamegraph_style; *l; l++) au_out_puts(o, *l);
    au_out_puts(o, "<rect width=\"100%\" height=\"100%\" fill=\"#f8f8f4\"/>\n");
    au_out_putf(o, "<text id=\"title\" x=\"%llu\" y=\"24\">", WIDTH / 2);
    if (title) put_title(o, title);
    else au_out_puts(o, "asyncunwind flame graph");
    au_out_putf(o, " (%llu samples)</text>\n", (unsigned long long)total);
    au_out_puts(o, "<text id=\"unzoom\" class=\"btn hid\" x=\"10\" y=\"24\">Reset Zoom</text>\n");
    au_out_putf(o, "<text id=\"search\" class=\"btn\" x=\"%llu\" y=\"24\">Search</text>\n",
               WIDTH - 110);
    au_out_putf(o, "<text id=\"details\" x=\"10\" y=\"%llu\"> </text>\n", height - 12);
    au_out_putf(o, "<text id=\"matched\" x=\"%llu\"", WIDTH - 110);
    au_out_putf(o, " y=\"%llu\"> </text>\n", height - 12);
    au_out_puts(o, "<g id=\"frames\">\n");
    double min_total = scale > 0 ? MIN_PX / scale : 0;
    for (uint32_t k = 0; k < t.n && o->rc == AU_OK; k++)
        if ((double)t.nodes[k].total >= min_total && t.nodes[k].total) put_frame(o, p, &t, k, scale, height);
    au_out_puts(o, "</g>\n<script type=\"text/ecmascript\"><![CDATA[\n");
    for (const char *const *l = flamegraph_script; *l; l++) au_out_puts(o, *l);
    au_out_puts(o, "]]></script>\n</svg>\n");
    tree_free(&t);
    return AU_OK;
}
