"""Provider adapters: one module per provider, each implementing ``providers.base.Provider``."""
