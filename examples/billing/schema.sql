-- debtgate reference billing schema (PostgreSQL >= 11).
--
-- A small but complete billing: accounts, their addresses, payments and RADIUS
-- sessions; the view `debtgate_subscribers` in the shape of the subscriber
-- contract; statement-level triggers that NOTIFY the changed account ids on
-- channel `debtgate` (once per statement, via transition tables).
--
-- debtgate is configured with two queries over the view:
--   snapshot_query = "SELECT * FROM debtgate_subscribers"
--   accounts_query = "SELECT * FROM debtgate_subscribers WHERE account = ANY($1::text[])"
--
-- An operator with a billing of their own writes the same view over their
-- tables (or over foreign tables: see docs/billing-postgres.md) and the same
-- triggers, or sends `NOTIFY debtgate, '<id>,<id>,...'` from their own code.

-- Row versions for debtgate's resync: every change takes a new, larger number.
CREATE SEQUENCE debtgate_version;

CREATE TABLE accounts (
    id          text PRIMARY KEY,
    name        text NOT NULL DEFAULT '',
    language    text NOT NULL DEFAULT '',
    tariff      text NOT NULL DEFAULT '',
    currency    text NOT NULL DEFAULT 'RUB',
    balance     numeric(14, 2) NOT NULL DEFAULT 0,
    state       text NOT NULL DEFAULT 'active'
                CHECK (state IN ('active', 'warn', 'blocked', 'paused', 'disabled')),
    since       date,
    block_at    date,
    address_list text,
    -- ^ maintained by a trigger on addresses ("10.0.0.5 10.0.1.0/24"): the view
    --   then reads one table, with no aggregation over a million rows.
    credit_until timestamptz,
    -- ^ a promised payment (billing.promise_payment): until then a blocked
    --   account is reported active.
    pause_until timestamptz,
    -- ^ end of a voluntary pause started for a number of days (billing.pause_service)
    version     bigint NOT NULL DEFAULT nextval('debtgate_version')
    -- ^ bumped by a trigger on every change: debtgate's resync compares
    --   count(*) and sum(version) and skips a million rows when both match.
);

CREATE TABLE addresses (
    address     inet PRIMARY KEY,
    account_id  text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE
);
CREATE INDEX addresses_account ON addresses (account_id);

CREATE TABLE payments (
    id          bigserial PRIMARY KEY,
    account_id  text NOT NULL REFERENCES accounts (id),
    amount      numeric(14, 2) NOT NULL CHECK (amount > 0),
    paid_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payments_account ON payments (account_id);

CREATE TABLE sessions (
    account_id  text PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    nas         text NOT NULL,
    session_id  text NOT NULL,
    user_name   text,
    version     bigint NOT NULL DEFAULT nextval('debtgate_version')
);

-- Keep accounts.address_list in step with addresses, once per statement (the
-- UPDATE of accounts then notifies debtgate). abbrev(inet) writes hosts
-- without /32 or /128.
CREATE FUNCTION billing_address_list() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids text[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT account_id) INTO ids FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(DISTINCT account_id) INTO ids FROM old_rows;
    ELSE
        SELECT array_agg(DISTINCT x) INTO ids FROM (
            SELECT account_id AS x FROM new_rows UNION SELECT account_id FROM old_rows) c;
    END IF;
    UPDATE accounts a
       SET address_list = (SELECT string_agg(abbrev(d.address), ' ' ORDER BY d.address)
                             FROM addresses d WHERE d.account_id = a.id)
     WHERE a.id = ANY (ids);
    RETURN NULL;
END $$;

CREATE TRIGGER addresses_list_ins AFTER INSERT ON addresses REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION billing_address_list();
CREATE TRIGGER addresses_list_upd AFTER UPDATE ON addresses
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION billing_address_list();
CREATE TRIGGER addresses_list_del AFTER DELETE ON addresses REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION billing_address_list();

-- A new version for every row that really changes. ENABLE ALWAYS: the version
-- moves even when replication or a bulk load disables the other triggers, so a
-- resync finds changes whose notification was lost.
CREATE FUNCTION debtgate_bump_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW IS DISTINCT FROM OLD THEN
        NEW.version := nextval('debtgate_version');
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER accounts_version BEFORE UPDATE ON accounts
    FOR EACH ROW EXECUTE FUNCTION debtgate_bump_version();
ALTER TABLE accounts ENABLE ALWAYS TRIGGER accounts_version;
CREATE TRIGGER sessions_version BEFORE UPDATE ON sessions
    FOR EACH ROW EXECUTE FUNCTION debtgate_bump_version();
ALTER TABLE sessions ENABLE ALWAYS TRIGGER sessions_version;

-- A deleted session would lower greatest(...) in the view: bump the account instead.
CREATE FUNCTION debtgate_session_gone() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE accounts SET version = nextval('debtgate_version') WHERE id = OLD.account_id;
    RETURN NULL;
END $$;

CREATE TRIGGER sessions_gone AFTER DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION debtgate_session_gone();
ALTER TABLE sessions ENABLE ALWAYS TRIGGER sessions_gone;

-- The subscriber contract (see debtgate.model): one row per account with at
-- least one address.
CREATE VIEW debtgate_subscribers AS
SELECT a.id AS account,
       a.address_list AS addresses,
       CASE WHEN a.state = 'blocked' AND a.credit_until > now() THEN 'active'
            ELSE a.state END AS state,
       greatest(-a.balance, 0) AS amount_due,
       a.currency,
       a.since,
       a.block_at,
       a.name,
       a.language,
       a.tariff,
       s.nas,
       s.session_id,
       s.user_name,
       greatest(a.version, s.version) AS version
FROM accounts a
LEFT JOIN sessions s ON s.account_id = a.id
WHERE a.address_list IS NOT NULL;

-- A payment is added to the balance; one that clears the debt of a warned or
-- blocked account makes it active again. Once per statement.
CREATE FUNCTION billing_apply_payments() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE accounts a
       SET balance = a.balance + p.total,
           state = CASE WHEN a.state IN ('warn', 'blocked') AND a.balance + p.total >= 0
                        THEN 'active' ELSE a.state END,
           since = CASE WHEN a.state IN ('warn', 'blocked') AND a.balance + p.total >= 0
                        THEN NULL ELSE a.since END,
           block_at = CASE WHEN a.state IN ('warn', 'blocked') AND a.balance + p.total >= 0
                           THEN NULL ELSE a.block_at END,
           credit_until = CASE WHEN a.balance + p.total >= 0 THEN NULL ELSE a.credit_until END
      FROM (SELECT account_id, sum(amount) AS total FROM new_payments GROUP BY account_id) p
     WHERE a.id = p.account_id;
    RETURN NULL;
END $$;

CREATE TRIGGER payments_apply AFTER INSERT ON payments
    REFERENCING NEW TABLE AS new_payments
    FOR EACH STATEMENT EXECUTE FUNCTION billing_apply_payments();

-- NOTIFY debtgate with account ids, comma-separated, each payload < 8000 bytes
-- (a longer list is split). More than 250,000 ids in one statement send one
-- empty payload instead: "resync everything".
CREATE FUNCTION debtgate_send(ids text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    payload text := '';
    one text;
BEGIN
    IF ids IS NULL OR cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    IF cardinality(ids) > 250000 THEN
        PERFORM pg_notify('debtgate', '');
        RETURN;
    END IF;
    FOREACH one IN ARRAY ids LOOP
        IF octet_length(payload) + octet_length(one) + 1 > 7900 THEN
            PERFORM pg_notify('debtgate', payload);
            payload := '';
        END IF;
        payload := CASE WHEN payload = '' THEN one ELSE payload || ',' || one END;
    END LOOP;
    IF payload <> '' THEN
        PERFORM pg_notify('debtgate', payload);
    END IF;
END $$;

-- One trigger function for every table: TG_ARGV[0] names the account id column.
-- DISTINCT also sorts the ids: debtgate fetches a large change in the order its
-- ids arrive, so that each batch finds its rows on neighbouring pages.
CREATE FUNCTION debtgate_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids text[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        EXECUTE format('SELECT array_agg(DISTINCT %I) FROM new_rows', TG_ARGV[0]) INTO ids;
    ELSIF TG_OP = 'DELETE' THEN
        EXECUTE format('SELECT array_agg(DISTINCT %I) FROM old_rows', TG_ARGV[0]) INTO ids;
    ELSE
        -- Only rows that really changed (an UPDATE setting the same values is no news).
        EXECUTE format('SELECT array_agg(DISTINCT x) FROM ('
                       ' SELECT n.%1$I AS x FROM new_rows n LEFT JOIN old_rows o'
                       '   ON o.%1$I = n.%1$I WHERE o IS DISTINCT FROM n'
                       ' UNION ALL SELECT o.%1$I FROM old_rows o LEFT JOIN new_rows n'
                       '   ON n.%1$I = o.%1$I WHERE n.%1$I IS NULL) c', TG_ARGV[0]) INTO ids;
    END IF;
    PERFORM debtgate_send(ids);
    RETURN NULL;
END $$;

CREATE TRIGGER accounts_notify_ins AFTER INSERT ON accounts REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION debtgate_notify('id');
CREATE TRIGGER accounts_notify_upd AFTER UPDATE ON accounts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION debtgate_notify('id');
CREATE TRIGGER accounts_notify_del AFTER DELETE ON accounts REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION debtgate_notify('id');

CREATE TRIGGER sessions_notify_ins AFTER INSERT ON sessions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION debtgate_notify('account_id');
CREATE TRIGGER sessions_notify_upd AFTER UPDATE ON sessions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION debtgate_notify('account_id');
CREATE TRIGGER sessions_notify_del AFTER DELETE ON sessions
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION debtgate_notify('account_id');

-- ---------------------------------------------------------------------------
-- Self-service (docs/selfservice.md): promised payment, voluntary pause, resume.
--
-- debtgate's SQL hook calls, each in its own transaction:
--   SELECT ok, reason FROM billing.promise_payment($1::text, $2::int, $3::text)
--   SELECT ok, reason FROM billing.resume_service($1::text, $2::text)
-- and the personal cabinet calls billing.pause_service(account, days, key).
-- The billing decides: it enforces its own policy (billing.selfservice_policy),
-- dedupes by the idempotency key (the same key gives the same answer, one
-- effect) and changes `accounts`, whose trigger NOTIFYs debtgate. The functions
-- are SECURITY DEFINER: debtgate's role needs EXECUTE on them and nothing else.
-- Run `SELECT billing.expire_selfservice()` every minute (cron, pg_cron) so that
-- expired credits and pauses are notified at once, not at the next resync.
-- ---------------------------------------------------------------------------
CREATE SCHEMA billing;

CREATE TABLE billing.selfservice_policy (
    id                  boolean PRIMARY KEY DEFAULT true CHECK (id),
    promise_max_days    int NOT NULL DEFAULT 7,
    promise_per_period  int NOT NULL DEFAULT 2,
    promise_period_days int NOT NULL DEFAULT 28,
    pause_max_days      int NOT NULL DEFAULT 90
);
INSERT INTO billing.selfservice_policy DEFAULT VALUES;

CREATE TABLE billing.selfservice_requests (
    request_id   text PRIMARY KEY,
    account_id   text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    action       text NOT NULL CHECK (action IN ('promise', 'pause', 'resume')),
    days         int,
    ok           boolean NOT NULL,
    reason       text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX selfservice_requests_account
    ON billing.selfservice_requests (account_id, action, created_at) WHERE ok;

-- The answer already given to a key; refuses a key reused for another account.
CREATE FUNCTION billing.selfservice_seen(p_key text, p_account text, p_action text,
                                         OUT found boolean, OUT ok boolean, OUT reason text)
LANGUAGE sql STABLE AS $$
    SELECT true,
           CASE WHEN r.account_id = p_account AND r.action = p_action THEN r.ok ELSE false END,
           CASE WHEN r.account_id = p_account AND r.action = p_action THEN r.reason
                ELSE 'bad_request' END
      FROM billing.selfservice_requests r WHERE r.request_id = p_key
    UNION ALL SELECT false, NULL, NULL
    LIMIT 1
$$;

CREATE FUNCTION billing.selfservice_record(p_key text, p_account text, p_action text,
                                           p_days int, p_ok boolean, p_reason text)
RETURNS TABLE (ok boolean, reason text)
LANGUAGE sql AS $$
    INSERT INTO billing.selfservice_requests (request_id, account_id, action, days, ok, reason)
    VALUES (p_key, p_account, p_action, p_days, p_ok, p_reason)
    ON CONFLICT (request_id) DO NOTHING;
    SELECT p_ok, p_reason;
$$;

-- A promised payment: `days` of access for a blocked account, at most
-- promise_per_period successful promises per promise_period_days.
CREATE FUNCTION billing.promise_payment(p_account text, p_days int, p_key text)
RETURNS TABLE (ok boolean, reason text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    acc accounts%ROWTYPE;
    pol billing.selfservice_policy%ROWTYPE;
    seen record;
    used int;
BEGIN
    -- The row lock serialises requests of one account (a double click included).
    SELECT * INTO acc FROM accounts WHERE id = p_account FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT false, 'unknown_account'::text;
        RETURN;
    END IF;
    seen := billing.selfservice_seen(p_key, p_account, 'promise');
    IF seen.found THEN
        RETURN QUERY SELECT seen.ok, seen.reason;
        RETURN;
    END IF;
    SELECT * INTO pol FROM billing.selfservice_policy;
    SELECT count(*) INTO used FROM billing.selfservice_requests r
     WHERE r.account_id = p_account AND r.action = 'promise' AND r.ok
       AND r.created_at > now() - make_interval(days => pol.promise_period_days);
    IF p_days IS NULL OR p_days < 1 OR p_days > pol.promise_max_days THEN
        RETURN QUERY SELECT * FROM billing.selfservice_record(p_key, p_account, 'promise',
                                                              p_days, false, 'days');
    ELSIF acc.state <> 'blocked' OR acc.credit_until > now() THEN
        RETURN QUERY SELECT * FROM billing.selfservice_record(p_key, p_account, 'promise',
                                                              p_days, false, 'state');
    ELSIF used >= pol.promise_per_period THEN
        RETURN QUERY SELECT * FROM billing.selfservice_record(p_key, p_account, 'promise',
                                                              p_days, false, 'limit');
    ELSE
        UPDATE accounts SET credit_until = now() + make_interval(days => p_days)
         WHERE id = p_account;
        RETURN QUERY SELECT * FROM billing.selfservice_record(p_key, p_account, 'promise',
                                                              p_days, true, NULL);
    END IF;
END $$;

-- A voluntary pause (from the personal cabinet): an active account is paused,
-- for p_days days (then resumed by expire_selfservice) or, with NULL, until resumed.
CREATE FUNCTION billing.pause_service(p_account text, p_days int, p_key text)
RETURNS TABLE (ok boolean, reason text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    acc accounts%ROWTYPE;
    seen record;
    max_days int;
BEGIN
    SELECT * INTO acc FROM accounts WHERE id = p_account FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT false, 'unknown_account'::text;
        RETURN;
    END IF;
    seen := billing.selfservice_seen(p_key, p_account, 'pause');
    IF seen.found THEN
        RETURN QUERY SELECT seen.ok, seen.reason;
        RETURN;
    END IF;
    SELECT pause_max_days INTO max_days FROM billing.selfservice_policy;
    IF p_days IS NOT NULL AND (p_days < 1 OR p_days > max_days) THEN
        RETURN QUERY SELECT * FROM billing.selfservice_record(p_key, p_account, 'pause',
                                                              p_days, false, 'days');
    ELSIF acc.state <> 'active' THEN
        RETURN QUERY SELECT * FROM billing.selfservice_record(p_key, p_account, 'pause',
                                                              p_days, false, 'state');
    ELSE
        UPDATE accounts SET state = 'paused', since = current_date,
               pause_until = now() + make_interval(days => p_days)
         WHERE id = p_account;
        RETURN QUERY SELECT * FROM billing.selfservice_record(p_key, p_account, 'pause',
                                                              p_days, true, NULL);
    END IF;
END $$;

-- Resume a voluntary pause.
CREATE FUNCTION billing.resume_service(p_account text, p_key text)
RETURNS TABLE (ok boolean, reason text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    acc accounts%ROWTYPE;
    seen record;
BEGIN
    SELECT * INTO acc FROM accounts WHERE id = p_account FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT false, 'unknown_account'::text;
        RETURN;
    END IF;
    seen := billing.selfservice_seen(p_key, p_account, 'resume');
    IF seen.found THEN
        RETURN QUERY SELECT seen.ok, seen.reason;
        RETURN;
    END IF;
    IF acc.state <> 'paused' THEN
        RETURN QUERY SELECT * FROM billing.selfservice_record(p_key, p_account, 'resume',
                                                              NULL, false, 'state');
    ELSE
        UPDATE accounts SET state = 'active', since = NULL, pause_until = NULL
         WHERE id = p_account;
        RETURN QUERY SELECT * FROM billing.selfservice_record(p_key, p_account, 'resume',
                                                              NULL, true, NULL);
    END IF;
END $$;

-- Expired credits and pauses (run every minute): each UPDATE notifies debtgate.
CREATE FUNCTION billing.expire_selfservice() RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    credits int;
    pauses int;
BEGIN
    UPDATE accounts SET credit_until = NULL WHERE credit_until <= now();
    GET DIAGNOSTICS credits = ROW_COUNT;
    UPDATE accounts SET state = 'active', since = NULL, pause_until = NULL
     WHERE state = 'paused' AND pause_until <= now();
    GET DIAGNOSTICS pauses = ROW_COUNT;
    RETURN credits + pauses;
END $$;

REVOKE ALL ON FUNCTION billing.promise_payment(text, int, text),
    billing.pause_service(text, int, text), billing.resume_service(text, text),
    billing.expire_selfservice() FROM PUBLIC;
