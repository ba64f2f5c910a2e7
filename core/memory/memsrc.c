/* Memory sources: what every source shares.  The sources themselves are in
 * mem_live.c (a live process), snapshot.c (a snapshot file) and recorder.c
 * (a source that keeps what it read). */
#include "asyncunwind.h"

int au_mem_read1(au_memsrc *m, uint64_t addr, void *buf, uint32_t len) {
    if (!m) return AU_ERR_ARG;
    au_read r = {addr, buf, len, AU_OK};
    return m->read(m, &r, 1);
}

void au_memsrc_destroy(au_memsrc *m) {
    if (m && m->destroy) m->destroy(m);
}
