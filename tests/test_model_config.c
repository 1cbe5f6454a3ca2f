/* test_model_config.c — model configurations and parameters: preset sizes, config.json round trips, refusal of
   unsupported values and malformed JSON with the field named, weight init, weight files, pipeline folders. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static ddpm_model *from_json(const char *json) {
    ddpm_model *m = NULL;
    CHECK_OK(ddpm_model_from_config_json(json, strlen(json), "test.json", 1, &m));
    return m;
}

/* The config must be refused with `want` and a message containing every string of `needles`. */
static void refuse(const char *json, ddpm_status want, const char *needle1, const char *needle2) {
    ddpm_model *m = NULL;
    ddpm_status st = ddpm_model_from_config_json(json, strlen(json), "unet/config.json", 1, &m);
    const char *msg = ddpm_last_error();
    CHECK_MSG(st == want, "%s -> %s (want %s): %s", json, ddpm_status_name(st), ddpm_status_name(want), msg);
    CHECK(m == NULL);
    CHECK_MSG(strstr(msg, "unet/config.json") != NULL, "message does not name the file: %s", msg);
    if (needle1) CHECK_MSG(strstr(msg, needle1) != NULL, "message lacks '%s': %s", needle1, msg);
    if (needle2) CHECK_MSG(strstr(msg, needle2) != NULL, "message lacks '%s': %s", needle2, msg);
    ddpm_model_free(m);
}

static void presets(void) {
    static const struct { const char *name; int64_t params; int tensors; } want[] = {
        {"mnist", 1707009, 318}, {"cifar10", 35746307, -1}, {"tiny", 45259, 144}, {"basic", 309057, 12},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        ddpm_model *m = NULL;
        CHECK_OK(ddpm_model_load(want[i].name, 0, &m));
        if (!m) continue;
        ddpm_model_info info;
        ddpm_model_get_info(m, &info);
        CHECK_MSG(info.num_params == want[i].params, "%s: %lld parameters, want %lld", want[i].name,
                  (long long)info.num_params, (long long)want[i].params);
        if (want[i].tensors > 0) CHECK_MSG(info.num_tensors == want[i].tensors, "%s: %d tensors", want[i].name,
                                           info.num_tensors);
        CHECK(info.weights_loaded == 0);
        /* the table is contiguous and in order */
        int64_t off = 0;
        for (int k = 0; k < info.num_tensors; k++) {
            ddpm_param_info p;
            CHECK_OK(ddpm_model_param(m, k, &p));
            CHECK(p.offset == off);
            off += p.numel;
        }
        CHECK(off == info.num_params);
        ddpm_param_info p;
        CHECK_FAIL(ddpm_model_param(m, info.num_tensors, &p), DDPM_ERR_INVALID_ARG);
        /* config.json text round trip: parse what we write, write it again, same text */
        char *json = NULL, *json2 = NULL;
        CHECK_OK(ddpm_model_config_json(m, &json));
        ddpm_model *m2 = json ? from_json(json) : NULL;
        if (m2) {
            CHECK_OK(ddpm_model_config_json(m2, &json2));
            CHECK_MSG(json2 && strcmp(json, json2) == 0, "%s: config round trip differs:\n%s\n%s", want[i].name, json,
                      json2);
            ddpm_model_info info2;
            ddpm_model_get_info(m2, &info2);
            CHECK(info2.num_params == info.num_params);
        }
        if (strcmp(want[i].name, "cifar10") == 0 && json) {
            /* google/ddpm-cifar10-32's non-default values and the paper's dropout */
            CHECK(strstr(json, "\"attention_head_dim\": null") != NULL);
            CHECK(strstr(json, "\"downsample_padding\": 0") != NULL);
            CHECK(strstr(json, "\"flip_sin_to_cos\": false") != NULL);
            CHECK(strstr(json, "\"freq_shift\": 1,") != NULL);
            CHECK(strstr(json, "\"norm_eps\": 1e-06") != NULL);
            CHECK(strstr(json, "\"dropout\": 0.1") != NULL);
        }
        ddpm_free(json);
        ddpm_free(json2);
        ddpm_model_free(m2);
        ddpm_model_free(m);
    }
    ddpm_model *m = NULL;
    CHECK_FAIL(ddpm_model_load("no-such-model", 0, &m), DDPM_ERR_IO);
    CHECK(strstr(ddpm_last_error(), "mnist") != NULL);
    CHECK(m == NULL);
}

/* The fixture's config.json (diffusers' to_json_string) is written back byte for byte. */
static void fixture_config(void) {
    const char *names[2] = {"unet_tiny/config.json", "unet_tiny_class/config.json"};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(dd_test_data(names[i]), "rb");
        CHECK(f != NULL);
        if (!f) continue;
        char buf[4096];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) buf[--n] = 0;
        ddpm_model *m = from_json(buf);
        char *json = NULL;
        if (m) CHECK_OK(ddpm_model_config_json(m, &json));
        if (json) {
            size_t k = strlen(json);
            while (k > 0 && json[k - 1] == '\n') json[--k] = 0;
            CHECK_MSG(strcmp(json, buf) == 0, "%s written back differs:\n%s", names[i], json);
        }
        ddpm_free(json);
        ddpm_model_free(m);
    }
}

static void refusals(void) {
    const ddpm_status U = DDPM_ERR_UNSUPPORTED, F = DDPM_ERR_FORMAT, I = DDPM_ERR_INVALID_ARG;
    refuse("{\"sample_size\": 8, \"block_out_channels\": [32, 64], \"down_block_types\": [\"DownBlock2D\", "
           "\"CrossAttnDownBlock2D\"], \"up_block_types\": [\"UpBlock2D\", \"UpBlock2D\"]}",
           U, "down_block_types[1] = 'CrossAttnDownBlock2D' is not supported", "AttnDownBlock2D");
    refuse("{\"sample_size\": 8, \"up_block_types\": [\"UpBlock2D\", \"UpBlock2D\", \"CrossAttnUpBlock2D\", "
           "\"UpBlock2D\"]}", U, "up_block_types[2]", "CrossAttnUpBlock2D");
    refuse("{\"_class_name\": \"UNet2DConditionModel\"}", U, "_class_name", "UNet2DConditionModel");
    refuse("{\"sample_size\": 8, \"act_fn\": \"gelu\"}", U, "act_fn", "gelu");
    refuse("{\"sample_size\": 8, \"time_embedding_type\": \"fourier\"}", U, "time_embedding_type", "fourier");
    refuse("{\"sample_size\": 8, \"resnet_time_scale_shift\": \"scale_shift\"}", U, "resnet_time_scale_shift", NULL);
    refuse("{\"sample_size\": 8, \"class_embed_type\": \"timestep\"}", U, "class_embed_type", "timestep");
    refuse("{\"sample_size\": 8, \"downsample_type\": \"resnet\"}", U, "downsample_type", "resnet");
    refuse("{\"sample_size\": 8, \"upsample_type\": \"resnet\"}", U, "upsample_type", NULL);
    refuse("{\"sample_size\": 8, \"downsample_padding\": 2}", U, "downsample_padding", NULL);
    refuse("{\"sample_size\": 8, \"attention_head_dim\": [8, 8, 8, 8]}", U, "attention_head_dim", NULL);
    refuse("{\"sample_size\": [8, 16]}", U, "sample_size", NULL);
    refuse("{\"block_out_channels\": [32, 64, 64, 64]}", U, "sample_size", NULL);   /* null sample_size */
    /* malformed JSON and wrong types */
    refuse("{\"sample_size\": 8,", F, "not valid JSON", NULL);
    refuse("[1, 2]", F, "JSON object", NULL);
    refuse("{\"sample_size\": 8} trailing", F, "after the JSON", NULL);
    refuse("{\"sample_size\": \"8\"}", F, "sample_size", "integer");
    refuse("{\"sample_size\": 8.5}", F, "sample_size", NULL);
    refuse("{\"sample_size\": 8, \"in_channels\": true}", F, "in_channels", NULL);
    refuse("{\"sample_size\": 8, \"center_input_sample\": 0}", F, "center_input_sample", NULL);
    refuse("{\"sample_size\": 8, \"block_out_channels\": 32}", F, "block_out_channels", NULL);
    refuse("{\"sample_size\": 8, \"down_block_types\": [1, 2, 3, 4]}", F, "down_block_types[0]", NULL);
    refuse("{\"sample_size\": 8, \"norm_eps\": \"small\"}", F, "norm_eps", NULL);
    refuse("{\"sample_size\": 8, \"cross_attention_dim\": 768}", F, "unknown key 'cross_attention_dim'", NULL);
    /* the keys current diffusers writes: the values the engine implements load, others are named */
    {
        static const char cur[] = "{\"sample_size\": 8, \"block_out_channels\": [32, 64, 64, 64], "
                                  "\"mid_block_type\": \"UNetMidBlock2D\", \"time_embedding_dim\": null}";
        static const char width[] = "{\"sample_size\": 8, \"block_out_channels\": [32, 64, 64, 64], "
                                    "\"mid_block_type\": \"UNetMidBlock2D\", \"time_embedding_dim\": 128}";
        ddpm_model *m = NULL;
        CHECK_OK(ddpm_model_from_config_json(cur, strlen(cur), "unet/config.json", 1, &m));
        ddpm_model_free(m);
        m = NULL;
        CHECK_OK(ddpm_model_from_config_json(width, strlen(width), "unet/config.json", 1, &m));
        ddpm_model_free(m);
    }
    refuse("{\"sample_size\": 8, \"mid_block_type\": \"UNetMidBlock2DCrossAttn\"}", U, "mid_block_type",
           "UNetMidBlock2DCrossAttn");
    {   /* mid_block_type null: no middle block, so no mid_block.* weights, and config.json says so again */
        static const char with[] = "{\"sample_size\": 8, \"block_out_channels\": [32, 64], \"down_block_types\": "
                                   "[\"DownBlock2D\", \"DownBlock2D\"], \"up_block_types\": [\"UpBlock2D\", "
                                   "\"UpBlock2D\"], \"norm_num_groups\": 8}";
        static const char without[] = "{\"sample_size\": 8, \"block_out_channels\": [32, 64], \"down_block_types\": "
                                      "[\"DownBlock2D\", \"DownBlock2D\"], \"up_block_types\": [\"UpBlock2D\", "
                                      "\"UpBlock2D\"], \"norm_num_groups\": 8, \"mid_block_type\": null}";
        ddpm_model *a = NULL, *b = NULL, *c = NULL;
        ddpm_model_info ia, ib;
        char *json = NULL;
        CHECK_OK(ddpm_model_from_config_json(with, strlen(with), "unet/config.json", 1, &a));
        CHECK_OK(ddpm_model_from_config_json(without, strlen(without), "unet/config.json", 1, &b));
        ddpm_model_get_info(a, &ia);
        ddpm_model_get_info(b, &ib);
        CHECK(ib.num_params < ia.num_params);
        int mid = 0;
        for (int i = 0; i < ib.num_tensors; i++) {
            ddpm_param_info pi;
            CHECK_OK(ddpm_model_param(b, i, &pi));
            if (strncmp(pi.name, "mid_block.", 10) == 0) mid++;
        }
        CHECK(mid == 0);
        CHECK_OK(ddpm_model_config_json(b, &json));
        CHECK(strstr(json, "\"mid_block_type\": null") != NULL);
        CHECK_OK(ddpm_model_from_config_json(json, strlen(json), "round trip", 1, &c));
        ddpm_model_info ic;
        ddpm_model_get_info(c, &ic);
        CHECK(ic.num_params == ib.num_params);
        ddpm_plan_config pc;
        ddpm_plan_config_default(&pc);
        pc.max_batch = 2;
        CHECK_OK(ddpm_model_prepare(b, &pc));
        float x[2 * 3 * 64], out[2 * 3 * 64], t[2] = {10, 500};
        for (int i = 0; i < 2 * 3 * 64; i++) x[i] = (float)((i % 7) - 3) / 3.0f;
        CHECK_OK(ddpm_model_forward(b, out, x, t, NULL, 2));
        for (int i = 0; i < 2 * 3 * 64; i++) CHECK(isfinite(out[i]));
        ddpm_free(json);
        ddpm_model_free(a);
        ddpm_model_free(b);
        ddpm_model_free(c);
    }
    refuse("{\"sample_size\": 8, \"mid_block_type\": 3}", F, "mid_block_type", NULL);
    refuse("{\"sample_size\": 8, \"block_out_channels\": [32, 64, 64, 64], \"time_embedding_dim\": 100}", U,
           "time_embedding_dim = 100", "128");
    refuse("{\"sample_size\": 8, \"sample_size\": 16}", F, "appears twice", NULL);
    refuse("{\"_class_name\": \"BasicUNet\", \"layers_per_block\": 2}", F, "layers_per_block", "BasicUNet");
    /* inconsistent or absurd sizes */
    refuse("{\"sample_size\": -8}", I, "sample_size", NULL);
    refuse("{\"sample_size\": 8, \"in_channels\": 0}", I, "in_channels", NULL);
    refuse("{\"sample_size\": 8, \"block_out_channels\": [32, 64, 64, 1000000000]}", I, "block_out_channels[3]", NULL);
    refuse("{\"sample_size\": 8, \"block_out_channels\": [32, 48, 64, 64]}", I, "not divisible by norm_num_groups",
           "48");
    refuse("{\"sample_size\": 8, \"block_out_channels\": [32, 64, 64, 64], \"attention_head_dim\": 24}", I,
           "attention_head_dim = 24", "64");
    refuse("{\"sample_size\": 8, \"block_out_channels\": [32, 64]}", I, "default down_block_types has 4", NULL);
    refuse("{\"sample_size\": 8, \"block_out_channels\": [32, 64], \"down_block_types\": [\"DownBlock2D\", "
           "\"DownBlock2D\"], \"up_block_types\": [\"UpBlock2D\"]}", I, "up_block_types has 1", NULL);
    refuse("{\"sample_size\": 12}", I, "sample_size = 12", "divisible by 8");
    refuse("{\"sample_size\": 8, \"layers_per_block\": 100000}", I, "layers_per_block", NULL);
    refuse("{\"sample_size\": 8, \"dropout\": 1.5}", I, "dropout", NULL);
    refuse("{\"sample_size\": 8, \"norm_eps\": 0}", I, "norm_eps", NULL);
    refuse("{\"sample_size\": 8, \"num_class_embeds\": 0}", I, "num_class_embeds", NULL);
    refuse("{\"sample_size\": 8, \"attn_norm_num_groups\": 5}", I, "mid_block", NULL);
    refuse("{\"_class_name\": \"BasicUNet\", \"sample_size\": 30}", I, "multiple of 4", NULL);
    /* accepted: defaults spelled out, swish, [S, S], private keys */
    ddpm_model *m = from_json("{\"_class_name\": \"UNet2DModel\", \"_diffusers_version\": \"0.30.0\", "
                              "\"_name_or_path\": \"x\", \"sample_size\": [16, 16], \"act_fn\": \"swish\", "
                              "\"block_out_channels\": [32, 32], \"down_block_types\": [\"DownBlock2D\", "
                              "\"AttnDownBlock2D\"], \"up_block_types\": [\"AttnUpBlock2D\", \"UpBlock2D\"], "
                              "\"add_attention\": false, \"num_train_timesteps\": 1000, \"in_channels\": 1}");
    CHECK(m != NULL);
    char *json = NULL;
    if (m) CHECK_OK(ddpm_model_config_json(m, &json));
    if (json) {
        CHECK(strstr(json, "\"act_fn\": \"swish\"") != NULL);
        CHECK(strstr(json, "\"add_attention\": false") != NULL);
        CHECK(strstr(json, "\"sample_size\": 16") != NULL);
        CHECK(strstr(json, "\"num_train_timesteps\": 1000") != NULL);
    }
    ddpm_free(json);
    ddpm_model_free(m);
}

/* PyTorch's default initialisation from the counter-based RNG. */
static void init(void) {
    ddpm_model *a = NULL, *b = NULL, *c = NULL;
    CHECK_OK(ddpm_model_load("tiny", 5, &a));
    CHECK_OK(ddpm_model_load("tiny", 5, &b));
    CHECK_OK(ddpm_model_load("tiny", 6, &c));
    if (!a || !b || !c) return;
    ddpm_model_info info;
    ddpm_model_get_info(a, &info);
    size_t bytes = sizeof(float) * (size_t)info.num_params;
    CHECK(memcmp(ddpm_model_params(a), ddpm_model_params(b), bytes) == 0);
    CHECK(memcmp(ddpm_model_params(a), ddpm_model_params(c), bytes) != 0);
    const float *p = ddpm_model_params(a);
    for (int i = 0; i < info.num_tensors; i++) {
        ddpm_param_info t;
        CHECK_OK(ddpm_model_param(a, i, &t));
        const float *v = p + t.offset;
        const char *leaf = strrchr(t.name, '.') + 1;
        int norm = strstr(t.name, "norm") != NULL;
        if (norm) {   /* GroupNorm: weight 1, bias 0 */
            float want = strcmp(leaf, "weight") == 0 ? 1.0f : 0.0f;
            for (int64_t k = 0; k < t.numel; k++) CHECK_MSG(v[k] == want, "%s[%lld] = %g", t.name, (long long)k, v[k]);
            continue;
        }
        /* Conv2d / Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in from the weight's shape */
        ddpm_param_info w;
        CHECK_OK(ddpm_model_param(a, strcmp(leaf, "bias") == 0 ? i - 1 : i, &w));
        int64_t fan_in = w.shape[1] * (w.ndim == 4 ? w.shape[2] * w.shape[3] : 1);
        double bound = 1.0 / sqrt((double)fan_in), mx = 0, sum = 0;
        for (int64_t k = 0; k < t.numel; k++) {
            mx = fmax(mx, fabs(v[k]));
            sum += v[k];
        }
        CHECK_MSG(mx <= bound && (t.numel < 16 || mx > 0.5 * bound), "%s: max |w| %g, bound %g", t.name, mx, bound);
        if (t.numel >= 1000) CHECK_MSG(fabs(sum / (double)t.numel) < 0.1 * bound, "%s: mean %g", t.name,
                                       sum / (double)t.numel);
    }
    ddpm_model_free(a);
    ddpm_model_free(b);
    ddpm_model_free(c);
    /* class embedding: N(0, 1) */
    ddpm_model *m = from_json("{\"sample_size\": 8, \"block_out_channels\": [32, 32], \"down_block_types\": "
                              "[\"DownBlock2D\", \"DownBlock2D\"], \"up_block_types\": [\"UpBlock2D\", "
                              "\"UpBlock2D\"], \"num_class_embeds\": 100}");
    if (!m) return;
    ddpm_param_info t;
    CHECK_OK(ddpm_model_param(m, 6, &t));
    CHECK(strcmp(t.name, "class_embedding.weight") == 0 && t.numel == 100 * 128);
    double s = 0, s2 = 0;
    for (int64_t k = 0; k < t.numel; k++) {
        double v = ddpm_model_params(m)[t.offset + k];
        s += v;
        s2 += v * v;
    }
    double mean = s / (double)t.numel, var = s2 / (double)t.numel - mean * mean;
    CHECK_MSG(fabs(mean) < 0.05 && fabs(var - 1.0) < 0.05, "embedding mean %g var %g", mean, var);
    ddpm_model_free(m);
}

static void weight_files(void) {
    ddpm_model *m = NULL, *tiny = NULL;
    CHECK_OK(ddpm_model_load("mnist", 0, &m));
    CHECK_OK(ddpm_model_load(dd_test_data("unet_tiny"), 0, &tiny));
    if (!m || !tiny) return;
    ddpm_model_info info;
    ddpm_model_get_info(tiny, &info);
    CHECK(info.weights_loaded == 1);
    /* the tiny fixture's weights do not fit mnist (its names are a subset): the missing tensors are named */
    CHECK_FAIL(ddpm_model_load_weights(m, dd_test_data("unet_tiny/weights.safetensors")), DDPM_ERR_FORMAT);
    CHECK(strstr(ddpm_last_error(), "174 parameters are missing ('down_blocks.0.resnets.1.norm1.weight'") != NULL);
    /* and the other way round, unexpected ones; a refused file changes nothing */
    const char *mdir = dd_test_tmpdir("model_mnist_weights");
    CHECK_OK(ddpm_model_save(m, mdir, NULL, DDPM_PRED_EPS));
    char mpath[1024];
    snprintf(mpath, sizeof mpath, "%s/unet/diffusion_pytorch_model.safetensors", mdir);
    float first = ddpm_model_params(tiny)[0];
    CHECK_FAIL(ddpm_model_load_weights(tiny, mpath), DDPM_ERR_FORMAT);
    CHECK(strstr(ddpm_last_error(), "174 unexpected tensors ('down_blocks.0.resnets.1.norm1.weight'") != NULL);
    CHECK(ddpm_model_params(tiny)[0] == first);

    const char *dir = dd_test_tmpdir("model_weights");
    char path[1024];
    const float *p = ddpm_model_params(tiny);
    /* one mis-shaped tensor, then deprecated attention names (query/key/value/proj_attn), then an extra one */
    for (int variant = 0; variant < 3; variant++) {
        ddpm_st_writer *w = NULL;
        CHECK_OK(ddpm_st_writer_create(&w));
        for (int i = 0; i < info.num_tensors; i++) {
            ddpm_param_info t;
            CHECK_OK(ddpm_model_param(tiny, i, &t));
            char name[256];
            snprintf(name, sizeof name, "%s", t.name);
            int64_t shape[4] = {t.shape[0], t.shape[1], t.shape[2], t.shape[3]};
            int ndim = t.ndim;
            if (variant == 0 && strcmp(t.name, "conv_in.weight") == 0) shape[0] = 4, shape[1] = 6;
            char *at;
            if (variant == 1 && (at = strstr(name, ".to_q.")) != NULL) {
                char rest[256];
                snprintf(rest, sizeof rest, "%s", at + 6);
                snprintf(at, sizeof name - (size_t)(at - name), ".query.%s", rest);
            }
            CHECK_OK(ddpm_st_writer_add(w, name, DDPM_DTYPE_F32, ndim, shape, p + t.offset));
        }
        if (variant == 2) {
            int64_t one = 1;
            float z = 0;
            CHECK_OK(ddpm_st_writer_add(w, "extra.tensor", DDPM_DTYPE_F32, 1, &one, &z));
        }
        snprintf(path, sizeof path, "%s/w%d.safetensors", dir, variant);
        CHECK_OK(ddpm_st_writer_save(w, path));
        ddpm_st_writer_free(w);
        ddpm_model *t = NULL;
        CHECK_OK(ddpm_model_load("tiny", 9, &t));
        if (!t) continue;
        if (variant == 0) {
            CHECK_FAIL(ddpm_model_load_weights(t, path), DDPM_ERR_FORMAT);
            CHECK(strstr(ddpm_last_error(), "conv_in.weight") != NULL && strstr(ddpm_last_error(), "[4, 6, 3, 3]"));
        } else if (variant == 1) {
            CHECK_OK(ddpm_model_load_weights(t, path));
            CHECK(memcmp(ddpm_model_params(t), p, sizeof(float) * (size_t)info.num_params) == 0);
        } else {
            CHECK_FAIL(ddpm_model_load_weights(t, path), DDPM_ERR_FORMAT);
            CHECK(strstr(ddpm_last_error(), "'extra.tensor'") != NULL);
        }
        ddpm_model_free(t);
    }
    ddpm_model_free(m);
    ddpm_model_free(tiny);
}

/* A saved pipeline folder: model_index.json, unet/, scheduler/ as diffusers writes them. */
static void pipeline_folder(void) {
    ddpm_model *m = NULL;
    CHECK_OK(ddpm_model_load("tiny", 3, &m));
    if (!m) return;
    const char *dir = dd_test_tmpdir("model_pipeline");
    char path[1024];
    ddpm_schedule_config sc;
    ddpm_schedule_config_default(&sc);
    sc.name = "cosine";
    snprintf(path, sizeof path, "%s/a/b", dir);
    CHECK_OK(ddpm_model_save(m, path, &sc, DDPM_PRED_V));
    snprintf(path, sizeof path, "%s/a/b/model_index.json", dir);
    cJSON *idx = dd_json_load(path);
    CHECK(strcmp(dd_json_path(idx, "_class_name")->valuestring, "DDPMPipeline") == 0);
    CHECK(strcmp(dd_json_path(idx, "unet[1]")->valuestring, "UNet2DModel") == 0);
    CHECK(strcmp(dd_json_path(idx, "scheduler[1]")->valuestring, "DDPMScheduler") == 0);
    cJSON_Delete(idx);
    snprintf(path, sizeof path, "%s/a/b/scheduler/scheduler_config.json", dir);
    cJSON *s = dd_json_load(path);
    CHECK(strcmp(dd_json_path(s, "beta_schedule")->valuestring, "squaredcos_cap_v2") == 0);
    CHECK(strcmp(dd_json_path(s, "prediction_type")->valuestring, "v_prediction") == 0);
    CHECK(strcmp(dd_json_path(s, "variance_type")->valuestring, "fixed_small") == 0);
    CHECK(cJSON_IsTrue(dd_json_path(s, "clip_sample")));
    CHECK(cJSON_IsNull(dd_json_path(s, "trained_betas")));
    cJSON_Delete(s);
    /* a schedule diffusers cannot name is written as trained_betas */
    sc.name = "sqrt";
    sc.T = 50;
    snprintf(path, sizeof path, "%s/sqrt", dir);
    CHECK_OK(ddpm_model_save(m, path, &sc, DDPM_PRED_EPS));
    snprintf(path, sizeof path, "%s/sqrt/scheduler/scheduler_config.json", dir);
    s = dd_json_load(path);
    cJSON *tb = dd_json_path(s, "trained_betas");
    CHECK(cJSON_IsArray(tb) && cJSON_GetArraySize(tb) == 50);
    double betas[50];
    CHECK_OK(ddpm_schedule_betas(&sc, betas));
    for (int i = 0; i < 50 && cJSON_IsArray(tb); i++) CHECK(cJSON_GetArrayItem(tb, i)->valuedouble == betas[i]);
    CHECK(dd_json_path(s, "num_train_timesteps")->valueint == 50);
    cJSON_Delete(s);
    /* a bad schedule is refused before anything is written */
    sc.name = "nonsense";
    snprintf(path, sizeof path, "%s/bad", dir);
    CHECK_FAIL(ddpm_model_save(m, path, &sc, DDPM_PRED_EPS), DDPM_ERR_INVALID_ARG);
    snprintf(path, sizeof path, "%s/bad/model_index.json", dir);
    CHECK(fopen(path, "r") == NULL);
    /* the unet folder and the pipeline folder both load */
    ddpm_model *m2 = NULL;
    snprintf(path, sizeof path, "%s/a/b/unet", dir);
    CHECK_OK(ddpm_model_load(path, 0, &m2));
    ddpm_model_info info;
    ddpm_model_get_info(m2, &info);
    CHECK(info.weights_loaded == 1);
    ddpm_model_get_info(m, &info);
    if (m2) CHECK(memcmp(ddpm_model_params(m2), ddpm_model_params(m), sizeof(float) * (size_t)info.num_params) == 0);
    ddpm_model_free(m2);
    /* a config.json path alone: initialised from the seed */
    snprintf(path, sizeof path, "%s/a/b/unet/config.json", dir);
    CHECK_OK(ddpm_model_load(path, 3, &m2));
    ddpm_model_get_info(m2, &info);
    CHECK(info.weights_loaded == 0);
    ddpm_model_free(m2);
    ddpm_model_free(m);
    /* basic saves and loads too */
    CHECK_OK(ddpm_model_load("basic", 1, &m));
    snprintf(path, sizeof path, "%s/basic", dir);
    CHECK_OK(ddpm_model_save(m, path, NULL, DDPM_PRED_EPS));
    CHECK_OK(ddpm_model_load(path, 0, &m2));
    ddpm_model_get_info(m2, &info);
    CHECK(info.weights_loaded == 1 && strcmp(info.kind, "basic") == 0 && info.num_params == 309057);
    ddpm_model_free(m2);
    ddpm_model_free(m);
}

/* The parameter table, derived from the layer graph, is diffusers' state_dict: the same keys in the same order
   with the same shapes (tests/data/state_dict/<net>/keys.txt, written by diffusers through
   make_state_dict_keys.py), for the presets and for class-conditional, middle-less and three-block variants. */
static void state_dict_order(void) {
    static const char *const nets[] = {"mnist", "cifar10", "tiny", "tiny_class_nomid", "tiny3_noattn", "basic"};
    for (size_t n = 0; n < sizeof nets / sizeof nets[0]; n++) {
        char rel[128], spec[1024];
        snprintf(rel, sizeof rel, "state_dict/%s/keys.txt", nets[n]);
        FILE *f = fopen(dd_test_data(rel), "r");
        CHECK_MSG(f != NULL, "%s: cannot open %s", nets[n], rel);
        if (!f) continue;
        if (strcmp(nets[n], "basic") == 0) {
            snprintf(spec, sizeof spec, "basic");
        } else {
            snprintf(rel, sizeof rel, "state_dict/%s/config.json", nets[n]);
            snprintf(spec, sizeof spec, "%s", dd_test_data(rel));
        }
        ddpm_model *m = NULL;
        CHECK_OK(ddpm_model_load(spec, 0, &m));
        ddpm_model_info info;
        ddpm_model_get_info(m, &info);
        char line[512];
        int i = 0;
        int64_t offset = 0;
        while (fgets(line, sizeof line, f)) {
            char key[256], shape[64];
            if (sscanf(line, "%255s %63s", key, shape) != 2) continue;
            ddpm_param_info p;
            if (i >= info.num_tensors) {
                CHECK_MSG(0, "%s: the table ends before %s (tensor %d)", nets[n], key, i);
                break;
            }
            CHECK_OK(ddpm_model_param(m, i, &p));
            char have[64] = "";
            for (int d = 0; d < p.ndim; d++)
                snprintf(have + strlen(have), sizeof have - strlen(have), d ? "x%lld" : "%lld",
                         (long long)p.shape[d]);
            CHECK_MSG(strcmp(p.name, key) == 0, "%s: tensor %d is %s, diffusers has %s", nets[n], i, p.name, key);
            CHECK_MSG(strcmp(have, shape) == 0, "%s: %s is %s, diffusers has %s", nets[n], key, have, shape);
            CHECK_MSG(p.offset == offset, "%s: %s at offset %lld, not %lld", nets[n], key, (long long)p.offset,
                      (long long)offset);
            offset += p.numel;
            i++;
        }
        fclose(f);
        CHECK_MSG(i == info.num_tensors, "%s: %d tensors in diffusers' state_dict, %d in the table", nets[n], i,
                  info.num_tensors);
        CHECK_MSG(offset == info.num_params, "%s: %lld parameters, diffusers has %lld", nets[n],
                  (long long)info.num_params, (long long)offset);
        printf("%s: %d tensors, %lld parameters, in diffusers' state_dict order\n", nets[n], i, (long long)offset);
        ddpm_model_free(m);
    }
}

int main(void) {
    state_dict_order();
    presets();
    fixture_config();
    refusals();
    init();
    weight_files();
    pipeline_folder();
    return dd_test_finish("test_model_config");
}
