-- RecordSponge's schema. Applied once by initdb.sh, as the app role (which owns every object).

CREATE TABLE users (
    user_id         serial PRIMARY KEY,
    email           text NOT NULL UNIQUE CHECK (email = lower(email)),
    name            text NOT NULL,
    admin           boolean NOT NULL DEFAULT false,
    -- werkzeug.security format (scrypt), checked by expungeservice.passwords.password_matches
    hashed_password text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
