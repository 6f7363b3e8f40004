-- Sample subscribers for the lab (the addresses of `debtgate lab`'s hosts).
INSERT INTO accounts (id, name, language, tariff, balance, state, since, block_at) VALUES
    ('A-active',  'Anna Active',   'en', 'Home 100', 120.00,  'active',  NULL, NULL),
    ('A-blocked', 'Boris Blocked', 'ru', 'Home 100', -1250.00, 'blocked', '2026-11-01', NULL),
    ('A-warn',    'Wanda Warned',  'en', 'Office',   -300.00,  'warn',    '2026-11-20',
     '2026-11-30'),
    ('A-paused',  'Paul Paused',   'en', 'Home 50',  0,        'paused',  '2026-11-10', NULL);
INSERT INTO addresses (address, account_id) VALUES
    ('100.64.1.10', 'A-active'), ('2001:db8:100:1::10', 'A-active'),
    ('100.64.1.11', 'A-blocked'), ('2001:db8:100:1::11', 'A-blocked'),
    ('100.64.2.0/28', 'A-warn'), ('2001:db8:100:200::/56', 'A-warn'),
    ('100.64.1.13', 'A-paused');
INSERT INTO sessions (account_id, nas, session_id, user_name) VALUES
    ('A-blocked', 'bras1', 'sess-blocked-1', 'boris');
