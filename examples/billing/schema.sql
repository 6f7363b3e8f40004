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
    address_list text
    -- ^ maintained by a trigger on addresses ("10.0.0.5 10.0.1.0/24"): the view
    --   then reads one table, with no aggregation over a million rows.
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
    user_name   text
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

-- The subscriber contract (see debtgate.model): one row per account with at
-- least one address.
CREATE VIEW debtgate_subscribers AS
SELECT a.id AS account,
       a.address_list AS addresses,
       a.state,
       greatest(-a.balance, 0) AS amount_due,
       a.currency,
       a.since,
       a.block_at,
       a.name,
       a.language,
       a.tariff,
       s.nas,
       s.session_id,
       s.user_name
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
                           THEN NULL ELSE a.block_at END
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
