-- How a program writes amounts and numbers for people (the console, the till, the apps): a
-- BCP 47 tag such as 'fr-FR' (12,50 €) or 'en-IE' (€12.50), beside its currency and time zone.
ALTER TABLE programs ADD COLUMN locale text NOT NULL DEFAULT 'en'
    CHECK (locale ~ '^[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?$');
