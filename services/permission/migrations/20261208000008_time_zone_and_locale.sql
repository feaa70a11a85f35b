-- Users' time zone and language, and the organisation's defaults for users who chose none
-- (ADR 0014). Time zones are IANA names, checked by the service against the tz database it was
-- built with (the database cannot know it); languages are a closed list.

ALTER TABLE users
    ADD COLUMN time_zone TEXT CHECK (char_length(time_zone) BETWEEN 1 AND 64),  -- NULL: the default
    ADD COLUMN locale    TEXT CHECK (locale IN ('zh-CN', 'en'));                -- NULL: the default

-- One row (the key can only be true). Written from the configuration (`org.*`) when missing,
-- then changed through UpdateOrgSettings with optimistic concurrency on `version`.
CREATE TABLE org_settings (
    id                BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
    default_time_zone TEXT NOT NULL CHECK (char_length(default_time_zone) BETWEEN 1 AND 64),
    default_locale    TEXT NOT NULL CHECK (default_locale IN ('zh-CN', 'en')),
    version           BIGINT NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL
);
