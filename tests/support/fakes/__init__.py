"""In-memory fakes for unit tests of the service layers: one fake per store and per remote service,
shared by every test that needs it (cosmicpython's "fakes, not mocks"). They keep the state a real
store or service would, so a test asserts on outcomes (what the ledger holds, what the table says)
and on the order of effects (`Journal`), never on which private method was called."""
