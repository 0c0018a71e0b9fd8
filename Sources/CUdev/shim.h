#ifndef POSMINI_CUDEV_SHIM_H
#define POSMINI_CUDEV_SHIM_H
#include <libudev.h>
#endif
