/* How a profile's interned names read in every output format, shared by
 * the profile writers (profile_write.c, flamegraph_svg.c).
 * Internal; the API is in asyncunwind.h. */
#ifndef ASYNCUNWIND_PROFILE_TEXT_H
#define ASYNCUNWIND_PROFILE_TEXT_H

#include "au_render_out.h"
#include "au_profile.h"

/* How target text is escaped. */
typedef enum au_esc {
    AU_ESC_COLLAPSED = 0, /* au_out_clean, collapsed */
    AU_ESC_JSON = 1,      /* au_out_json */
    AU_ESC_XML = 2,       /* au_out_xml */
} au_esc;

void au_out_esc(au_out *o, const char *s, size_t n, au_esc esc);

/* Name n as dump's collapsed form writes it ("thread 12 (MainThread)",
 * "[Task-1]", "[cycle -> a]", "<unknown> (0x...)"); a FRAME is its
 * qualname alone, followed by " (file:line)" only with `with_file`. */
void au_pname_put(au_out *o, const au_pname *n, au_esc esc, int with_file);

/* " (file:line)" of a frame name's location: "file:line", or "file:?". */
void au_pname_put_location(au_out *o, const au_pname *n, au_esc esc);

/* The SVG flame graph (flamegraph_svg.c). */
int au_profile_write_svg(const au_profile *p, const char *title, au_out *o);

#endif
