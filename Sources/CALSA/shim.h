#ifndef POSMINI_CALSA_SHIM_H
#define POSMINI_CALSA_SHIM_H
#include <alsa/asoundlib.h>

/* alsa-lib prints its own diagnostics to stderr by default; posminid reports every failure as
   a typed error instead, so those lines are dropped (they would be noise in the journal). */
static void posmini_alsa_silent(const char *file, int line, const char *function, int err, const char *fmt, ...) {
    (void)file; (void)line; (void)function; (void)err; (void)fmt;
}

static inline void posmini_alsa_quiet(void) { snd_lib_error_set_handler(posmini_alsa_silent); }
#endif
