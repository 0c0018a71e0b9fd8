#ifndef POSMINI_COPENSSL_SHIM_H
#define POSMINI_COPENSSL_SHIM_H
// libcrypto's EVP interface, for DES-EDE3 (TDES DUKPT). Only the cipher calls are used.
#include <openssl/evp.h>
#include <openssl/err.h>
#endif
