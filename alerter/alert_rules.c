/* alert_rules: threshold, clear level, hysteresis step and expiry stages
 * (see alert_rules.h). */
#include "alert_rules.h"

const int alert_expiry_days[ALERT_EXPIRY_STAGES] = {90, 30, 7, 1, 0};

static int64_t ceil_pct(int64_t n, int64_t pct)
{
    if (n <= 0 || pct <= 0)
        return 0;
    return (n * pct + 99) / 100;
}

int64_t alert_threshold_count(int64_t owned, int32_t pct)
{
    return ceil_pct(owned, pct);
}

/* SPEC §6's clear level, but never below 1: with a threshold of 1 seat the
 * literal level is 0, which usage can never drop below, so a single-seat
 * pool would alert once and never again. Floored at 1, the episode ends
 * when usage drops to 0 (README: "Choices made where the spec is silent"). */
int64_t alert_clear_level(int64_t owned, int32_t pct, int32_t clear_margin_pct)
{
    int64_t margin = ceil_pct(owned, clear_margin_pct);
    int64_t level = alert_threshold_count(owned, pct) - (margin < 1 ? 1 : margin);
    return level < 1 ? 1 : level;
}

bool alert_episode_step(bool *fired, int64_t in_use, int64_t threshold, int64_t clear)
{
    if (*fired) {
        if (in_use < clear)
            *fired = false;
        return false;
    }
    if (threshold > 0 && in_use >= threshold) {
        *fired = true;
        return true;
    }
    return false;
}

int alert_expiry_stage(int64_t days_left)
{
    if (days_left > alert_expiry_days[0] || days_left < -ALERT_EXPIRY_GRACE_DAYS)
        return -1;
    int stage = 0;
    for (int i = 1; i < ALERT_EXPIRY_STAGES; i++)
        if (days_left <= alert_expiry_days[i])
            stage = i;
    return stage;
}
