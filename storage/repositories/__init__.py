"""The repositories over SQLModel's async session, one module per aggregate; `storage.unit_of_work` puts
them together in one transaction."""
