"""Admin curation: who is an admin, the forms to add and edit entries, and the actions."""
