#!/usr/bin/env python3
"""Where the FFI library's bytes are: the sizes of its symbols (`nm -S` on the unstripped
library), summed by the library they come from, as a Markdown table.

Usage: scripts/ffi-size-breakdown.py LIBRARY   (called by scripts/bindings.sh)

Rust symbols are attributed to their crate (the first path segment of their mangled name);
C symbols by name: SQLite/SQLite3MC (`sqlite3*`, `sqlcipher*`, `sqlite3mc*`), zstd, ring's C and assembly,
other crypto C by algorithm family (ring's elliptic curves and AES, SQLite3MC's AES, SHA and
ChaCha; the rule also covers OpenSSL's prefixes, which the library no longer holds since
ADR 0008 moved to SQLite3MC); what no rule names is
"other C" (mostly SQLite's static functions and the cipher code). Symbol sizes leave out section
overhead (unwind tables, the dynamic symbol table), so the total is below the file's size.
--self-test checks the attribution rules.
"""
import collections
import re
import subprocess
import sys

OPENSSL = re.compile(
    r"^(ossl_|OSSL_|EVP_|evp_|BN_|bn_|RSA_|rsa_|EC_|ec_|ecp_|X509|x509|ASN1_|asn1_|OPENSSL_|"
    r"CRYPTO_|crypto_|ERR_|err_|PEM_|PKCS|pkcs|DH_|dh_|DSA_|dsa_|OBJ_|obj_|nid_objs|BIO_|bio_|"
    r"CMS_|cms_|SSL_|ssl_|aes|AES_|sha|SHA|md5|MD5|camellia|Camellia|aria|ARIA|sm2|sm3|sm4|"
    r"SM2|SM4|DES_|des_|bf_|BF_|CAST_|RC2|RC4|rc4|SEED|whirlpool|ripemd|RIPEMD|IDEA|gcm|GCM|"
    r"cmac|CMAC|hmac|HMAC|RAND_|rand_|OCSP|ocsp|CT_|ECDSA|ecdsa|ECDH|ecdh|ecx|X25519|X448|"
    r"ED25519|ED448|curve448|gf_|UI_|CONF|conf_|NCONF|TS_|ESS|SRP|DSO|dso|ENGINE|engine|"
    r"blake2|BLAKE2|siphash|keccak|KECCAK|lh_|v3_|i2d|d2i|i2v|v2i|i2r|s2i|i2s|param_group|"
    r"bsaes|vpaes|aesni|ghash|x86_64_|poly1305|Poly1305|ChaCha20|chacha|ktls|tls1|dtls)"
)


def owner(name: str) -> str:
    """Which library a (mangled) symbol name belongs to."""
    if name.startswith("_ZN"):
        m = re.match(r"_ZN(\d+)(\S+)", name)
        if m:
            crate = m.group(2)[: int(m.group(1))]
            if crate.startswith("_$LT$") or crate.startswith("$LT$"):
                return "Rust: trait impls (generic, any crate)"
            return "Rust: " + crate
        return "Rust: other"
    if name.startswith("_R"):
        return "Rust: other (v0 mangling)"
    if re.match(r"(sqlite3|sqlcipher)", name, re.I):
        return "SQLite / SQLite3MC"
    if re.match(r"(ZSTD|HUF_|FSE_|HIST_|POOL_|ZDICT)", name):
        return "zstd"
    if re.match(r"(ring_core|GFp_)", name):
        return "ring (C and assembly)"
    if OPENSSL.match(name):
        return "crypto C (ring's, SQLite3MC's ciphers)"
    return "other C"


def self_test() -> None:
    cases = {
        "_ZN13doorstep_core5store5Store4open17h0123456789abcdefE": "Rust: doorstep_core",
        "sqlite3VdbeExec": "SQLite / SQLite3MC",
        "ZSTD_compressBlock_fast": "zstd",
        "ring_core_0_17_14__k25519Precomp": "ring (C and assembly)",
        "ossl_aes_gcm_encrypt_avx512": "crypto C (ring's, SQLite3MC's ciphers)",
        "EVP_EncryptInit_ex": "crypto C (ring's, SQLite3MC's ciphers)",
        "btreeNext": "other C",
    }
    for name, want in cases.items():
        got = owner(name)
        assert got == want, f"{name}: {got} != {want}"
    print("self-test: ok")


def main() -> None:
    if sys.argv[1:] == ["--self-test"]:
        self_test()
        return
    if len(sys.argv) != 2:
        sys.exit("usage: scripts/ffi-size-breakdown.py LIBRARY")
    out = subprocess.run(
        ["nm", "-S", "--size-sort", sys.argv[1]], check=True, capture_output=True, text=True
    ).stdout
    sizes: collections.Counter = collections.Counter()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        sizes[owner(parts[3])] += int(parts[1], 16)
    total = sum(sizes.values())
    print("| from | bytes of symbols | share |")
    print("| --- | ---: | ---: |")
    shown = 0
    for who, n in sizes.most_common(12):
        shown += n
        print(f"| {who} | {n:,} | {100 * n / total:.1f} % |")
    print(f"| the rest ({len(sizes) - min(len(sizes), 12)} more) | {total - shown:,} | {100 * (total - shown) / total:.1f} % |")
    print(f"| **all symbols** | **{total:,}** | 100 % |")


if __name__ == "__main__":
    main()
