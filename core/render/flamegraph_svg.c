/* The SVG flame graph of a profile (docs/OUTPUTS.md). */
#include "asyncunwind.h"
#include "profile_text.h"

int au_profile_write_svg(const au_profile *p, const char *title, au_out *o) {
    (void)p;
    (void)title;
    (void)o;
    return AU_ERR_UNSUPPORTED;
}
