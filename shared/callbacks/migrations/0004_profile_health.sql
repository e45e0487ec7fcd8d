-- Receiver health, kept by the reporter (issue 9): the current streak of final failures
-- per profile, and the notices (emails) it decided to send.

-- One row per profile that has had a final outcome. ``failing_since`` is the attempt
-- time of the first final failure after the last delivered callback (NULL: no streak);
-- every field moves monotonically (max/min), so replaying outcomes changes nothing.
CREATE TABLE profile_health (
    profile_id         uuid PRIMARY KEY,
    account_id         uuid NOT NULL,
    last_delivered_at  timestamptz,
    failing_since      timestamptz,
    last_failed_at     timestamptz,
    -- Failures attempted at or before this are ignored (set when the profile is disabled,
    -- so the callbacks still in flight then do not start a new streak).
    quiet_until        timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- Emails about a profile, written in the transaction that decided them and sent by the
-- reporter's notifier (claimed with a lease, like report_runs). The unique key makes
-- each notice once-only: one warning per streak, one email per disable.
CREATE TABLE profile_notices (
    id            bigserial PRIMARY KEY,
    account_id    uuid NOT NULL,
    profile_id    uuid NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('failing_warning', 'disabled_failing',
                                                'disabled_gone')),
    key_at        timestamptz NOT NULL,   -- the streak start or the disabling attempt
    detail        text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    claimed_by    text,
    lease_until   timestamptz,
    claims        integer NOT NULL DEFAULT 0,
    sent_at       timestamptz,
    last_error    text,
    UNIQUE (profile_id, kind, key_at)
);

CREATE INDEX profile_notices_pending ON profile_notices (id) WHERE sent_at IS NULL;
