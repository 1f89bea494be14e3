-- Prices by tier (docs/design.md §7 "Tiers"): a cached-input price per 1K
-- prompt tokens served from the upstream's prompt cache (0 = the input
-- price, so rows written before tiers keep billing as they did) and a
-- per-call price for tools the cloud bills per call.
ALTER TABLE billing_prices ADD COLUMN cached_input_micros BIGINT NOT NULL DEFAULT 0 CHECK (cached_input_micros >= 0);
ALTER TABLE billing_prices ADD COLUMN per_call_micros BIGINT NOT NULL DEFAULT 0 CHECK (per_call_micros >= 0);

-- What a usage row needs so its charge is explained by tier from the row
-- alone: the cached and reasoning parts of its token counts, its billed
-- tool calls, its price class ('standard', 'batch'; '' for rows charged
-- before tiers, whose prices were not kept) and the prices it was charged
-- at, batch-scaled for a batch line. amount_micros is then
-- ceil(((prompt - cached) * input + cached * cached_price
--       + completion * output) / 1000 + calls * per_call + images * image).
ALTER TABLE billing_usage ADD COLUMN cached_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE billing_usage ADD COLUMN reasoning_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE billing_usage ADD COLUMN calls BIGINT NOT NULL DEFAULT 0;
ALTER TABLE billing_usage ADD COLUMN price_class TEXT NOT NULL DEFAULT '';
ALTER TABLE billing_usage ADD COLUMN price_input_micros BIGINT NOT NULL DEFAULT 0;
ALTER TABLE billing_usage ADD COLUMN price_cached_micros BIGINT NOT NULL DEFAULT 0;
ALTER TABLE billing_usage ADD COLUMN price_output_micros BIGINT NOT NULL DEFAULT 0;
ALTER TABLE billing_usage ADD COLUMN price_call_micros BIGINT NOT NULL DEFAULT 0;
ALTER TABLE billing_usage ADD COLUMN price_image_micros BIGINT NOT NULL DEFAULT 0;

-- Rolled-up days keep the tiers summed, in nanos (1e-9 CNY: tokens times a
-- price per 1K in micros, exact). A day rolled up before tiers has its
-- whole amount as unsplit_nanos.
ALTER TABLE billing_usage_daily ADD COLUMN cached_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE billing_usage_daily ADD COLUMN reasoning_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE billing_usage_daily ADD COLUMN calls BIGINT NOT NULL DEFAULT 0;
ALTER TABLE billing_usage_daily ADD COLUMN batch_requests BIGINT NOT NULL DEFAULT 0;
ALTER TABLE billing_usage_daily ADD COLUMN input_nanos BIGINT NOT NULL DEFAULT 0;
ALTER TABLE billing_usage_daily ADD COLUMN cached_input_nanos BIGINT NOT NULL DEFAULT 0;
ALTER TABLE billing_usage_daily ADD COLUMN output_nanos BIGINT NOT NULL DEFAULT 0;
ALTER TABLE billing_usage_daily ADD COLUMN per_call_nanos BIGINT NOT NULL DEFAULT 0;
ALTER TABLE billing_usage_daily ADD COLUMN image_nanos BIGINT NOT NULL DEFAULT 0;
ALTER TABLE billing_usage_daily ADD COLUMN unsplit_nanos BIGINT NOT NULL DEFAULT 0;
UPDATE billing_usage_daily SET unsplit_nanos = amount_micros * 1000;

-- The 2026 models' shipped prices (billing.DefaultPrices; believed, taken
-- 2026-04-25, docs/v4.md §7). Missing rows only: a row an operator set
-- already is left as it is.
INSERT INTO billing_prices (model, input_micros, cached_input_micros, output_micros, per_call_micros, image_micros, updated_at) VALUES
    ('cogview-4', 0, 0, 0, 0, 60000, 0),
    ('glm-4.5', 2000, 400, 8000, 0, 0, 0),
    ('glm-4.5-air', 800, 160, 2000, 0, 0, 0),
    ('glm-4.5-airx', 4000, 800, 12000, 0, 0, 0),
    ('glm-4.5-flash', 0, 0, 0, 0, 0, 0),
    ('glm-4.5-x', 8000, 1600, 16000, 0, 0, 0),
    ('glm-4.5v', 2000, 400, 6000, 0, 0, 0),
    ('glm-4.6', 2000, 400, 8000, 0, 0, 0),
    ('glm-4.6v', 1000, 200, 3000, 0, 0, 0),
    ('glm-4.7', 2000, 400, 8000, 0, 0, 0),
    ('glm-4.7-flash', 0, 0, 0, 0, 0, 0),
    ('glm-5', 4000, 1000, 18000, 0, 0, 0),
    ('glm-5.1', 6000, 1200, 24000, 0, 0, 0),
    ('rerank', 800, 0, 0, 0, 0, 0)
ON CONFLICT (model) DO NOTHING;
