"""Platform adapters: each turns its updates into core calls and core replies into its markup."""
