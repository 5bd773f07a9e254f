"""Users, roles and permissions: above balances (deactivation checks the user's balances),
below transactions. The core: `models`, `services`, `selectors`, `authorization` (the rule
every write obeys), `locks` (the user-row lock). Interfaces with the views: `permissions`,
`authentication`, `backends` and `throttles`."""
