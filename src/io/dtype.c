/* dtype.c — element types of tensor files: sizes, safetensors names, and the f16 / bf16 conversions
   (IEEE 754 binary16 and bfloat16, round to nearest even, subnormals, inf and NaN preserved). */
#include <string.h>

#include "core/core.h"

size_t ddpm_dtype_size(ddpm_dtype t) {
    switch (t) {
    case DDPM_DTYPE_F64: case DDPM_DTYPE_I64: return 8;
    case DDPM_DTYPE_F32: case DDPM_DTYPE_I32: return 4;
    case DDPM_DTYPE_F16: case DDPM_DTYPE_BF16: case DDPM_DTYPE_I16: return 2;
    case DDPM_DTYPE_I8: case DDPM_DTYPE_U8: case DDPM_DTYPE_BOOL: return 1;
    }
    return 0;
}

const char *ddpm_dtype_name(ddpm_dtype t) {
    switch (t) {
    case DDPM_DTYPE_F64: return "F64";
    case DDPM_DTYPE_F32: return "F32";
    case DDPM_DTYPE_F16: return "F16";
    case DDPM_DTYPE_BF16: return "BF16";
    case DDPM_DTYPE_I64: return "I64";
    case DDPM_DTYPE_I32: return "I32";
    case DDPM_DTYPE_I16: return "I16";
    case DDPM_DTYPE_I8: return "I8";
    case DDPM_DTYPE_U8: return "U8";
    case DDPM_DTYPE_BOOL: return "BOOL";
    }
    return "?";
}

static float bits_to_f32(uint32_t x) {
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

static uint32_t f32_to_bits(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    return x;
}

/* binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits. Every value is exact in binary32. */
float ddpm_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) {
        if (m == 0) return bits_to_f32(sign);
        /* subnormal m * 2^-24: normalise so the leading one sits at bit 10 */
        e = 113;
        while (!(m & 0x400u)) {
            m <<= 1;
            e--;
        }
        return bits_to_f32(sign | (e << 23) | ((m & 0x3ffu) << 13));
    }
    if (e == 31) return bits_to_f32(sign | 0x7f800000u | (m << 13));   /* inf, NaN (payload kept) */
    return bits_to_f32(sign | ((e + 112u) << 23) | (m << 13));
}

uint16_t ddpm_f32_to_f16(float f) {
    uint32_t x = f32_to_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) /* NaN: quiet, top payload bits kept */
        return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    if (ax >= 0x477ff000u) /* >= 65520 (and inf) rounds to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (ax < 0x38800000u) { /* below 2^-14: subnormal half or zero */
        if (ax < 0x33000000u) return (uint16_t)sign;   /* < 2^-25 rounds to zero */
        uint32_t e = ax >> 23;                          /* 102 .. 112 */
        uint32_t m = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126u - e;                      /* value / 2^-24 = m >> shift */
        uint32_t h = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (h & 1u))) h++;   /* may carry into the smallest normal */
        return (uint16_t)(sign | h);
    }
    uint32_t h = (ax - 0x38000000u) >> 13;              /* rebias exponent 127 -> 15 */
    uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;  /* a carry may reach inf: correct */
    return (uint16_t)(sign | h);
}

/* bfloat16: the top half of binary32. */
float ddpm_bf16_to_f32(uint16_t h) {
    return bits_to_f32((uint32_t)h << 16);
}

uint16_t ddpm_f32_to_bf16(float f) {
    uint32_t x = f32_to_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x0040u);  /* NaN stays NaN */
    uint32_t round = 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)((x + round) >> 16);
}
