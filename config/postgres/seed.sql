-- DEV-ONLY seed users (see README.md for their passwords). Never load this into staging or
-- production: initdb.sh is only run against the dev stack's database.
-- Each row: (email, name, admin, hashed_password); hashes made with
-- expungeservice.passwords.hash_password (werkzeug scrypt).

INSERT INTO users (email, name, admin, hashed_password) VALUES
    ('admin@example.com', 'Dev Admin', true, 'scrypt:32768:8:1$Hnp5DYz71auSUS3g$c59f10bab0d838b2c6d4337338ca793f8572cc75a62e673847284adef847210e5278eecffb7931cf083c2ee2d5cfbb7e9f4e67a036c4a33789ea86a4e4246d61'),
    ('user@example.com', 'Dev User', false, 'scrypt:32768:8:1$jfUyP0hXPQ8e6GYZ$4c771739daf1f4004751f0a4175e4cbbd042a5727b53c0fd03d6722273aaf33f6a00f59d36ae7015f5f9ef1a5efdc8b9e35c45796b3a4ef88d9f7049bf186ed6');
