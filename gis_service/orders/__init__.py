"""Service orders (三单制): a resident orders a service (群众点单), the community dispatches it
to a volunteer or a partner unit (社区派单), who takes it (党员接单), does it and is rated;
the volunteer and partner registries they draw on."""
