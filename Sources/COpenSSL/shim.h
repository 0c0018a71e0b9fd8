#ifndef POSMINI_COPENSSL_SHIM_H
#define POSMINI_COPENSSL_SHIM_H
// libcrypto's EVP interface: AES and DES-EDE3 block ciphers, and the CMAC MAC (with the
// OSSL_PARAM that names its cipher). Only these calls are used.
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/err.h>
#endif
