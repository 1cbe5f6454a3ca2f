/* fuzz_train_state.c — libFuzzer target for the training-state parser (dd_train_state_parse, the
   training_state.json a resume reads): a refusal must say why, and an accepted state must pass the
   configuration check and survive a write/parse round trip unchanged. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "train/train.h" /* internal: dd_train_state_parse */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static dd_train_state s, r;   /* large (the schedule name buffer): kept off the stack */
    ddpm_clear_error();
    if (dd_train_state_parse((const char *)data, size, "fuzz.json", &s) != DDPM_OK) {
        if (ddpm_last_error()[0] == 0) __builtin_trap();   /* every refusal says why */
        return 0;
    }
    if (dd_train_config_validate(&s.c) != DDPM_OK) __builtin_trap();
    char *json = NULL, *again = NULL;
    if (dd_train_state_to_json(&s, &json) != DDPM_OK) return 0;   /* out of memory only */
    if (dd_train_state_parse(json, strlen(json), "round trip", &r) != DDPM_OK) __builtin_trap();
    if (dd_train_state_to_json(&r, &again) != DDPM_OK) {
        ddpm_free(json);
        return 0;
    }
    if (strcmp(json, again) != 0) __builtin_trap();
    ddpm_free(json);
    ddpm_free(again);
    return 0;
}
