/* timestep.c — the sinusoidal timestep embedding of diffusers (Timesteps / get_timestep_embedding), in float32
   the way diffusers computes it and in double for a double-precision model. */
#include <math.h>

#include "backend/reference/ref_ops.h"

/* diffusers v0.27.2 get_timestep_embedding, every operation in float32:
     exponent_i = fl32(-ln(max_period)) * fl32(i) / fl32(half - freq_shift),  i < half = dim / 2
     f_i = expf(exponent_i);  arg_ni = fl32(t_n) * f_i
     emb_n = [sinf(arg_n), cosf(arg_n)]  ([cosf, sinf] when flip_sin_to_cos), zero last column for odd dim.
   (diffusers' `scale` = 1 multiplies by one.) t [N], out [N, dim]. */
void dd_timestep_embedding_f32(float *out, const float *t, int N, int dim, int flip_sin_to_cos,
                               double freq_shift, double max_period) {
    const int half = dim / 2;
    const float neg_log = (float)(-log(max_period));
    const float denom = (float)((double)half - freq_shift);
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * dim;   /* [dim] */
        for (int i = 0; i < half; i++) {
            const float exponent = neg_log * (float)i / denom;
            const float arg = t[n] * expf(exponent);
            const float s = sinf(arg), c = cosf(arg);
            o[i] = flip_sin_to_cos ? c : s;
            o[half + i] = flip_sin_to_cos ? s : c;
        }
        if (dim % 2) o[dim - 1] = 0.0f;
    }
}

/* The same in double: f_i = exp(-ln(max_period) i / (half - freq_shift)), arg = t f_i. */
void dd_timestep_embedding_f64(double *out, const double *t, int N, int dim, int flip_sin_to_cos,
                               double freq_shift, double max_period) {
    const int half = dim / 2;
    const double neg_log = -log(max_period);
    const double denom = (double)half - freq_shift;
    for (int n = 0; n < N; n++) {
        double *o = out + (size_t)n * dim;   /* [dim] */
        for (int i = 0; i < half; i++) {
            const double arg = t[n] * exp(neg_log * (double)i / denom);
            const double s = sin(arg), c = cos(arg);
            o[i] = flip_sin_to_cos ? c : s;
            o[half + i] = flip_sin_to_cos ? s : c;
        }
        if (dim % 2) o[dim - 1] = 0.0;
    }
}
