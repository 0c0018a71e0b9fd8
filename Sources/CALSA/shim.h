#ifndef POSMINI_CALSA_SHIM_H
#define POSMINI_CALSA_SHIM_H
#include <alsa/asoundlib.h>
#endif
