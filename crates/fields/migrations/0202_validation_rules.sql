-- Validation rules across fields (crm_fields::rules): per entity, a condition in the condition
-- language that a record must not match, with its message in Chinese and English.
CREATE TABLE validation_rules (
    id          UUID PRIMARY KEY,
    entity      TEXT NOT NULL CHECK (entity ~ '^[a-z][a-z0-9_]{1,63}$'),
    key         TEXT NOT NULL CHECK (key ~ '^[a-z][a-z0-9_]{0,39}$'),
    -- The whole rule as crm_fields::rules::ValidationRule.
    rule        JSONB NOT NULL,
    version     BIGINT NOT NULL,
    UNIQUE (entity, key)
);
