"""The FreeSWITCH event socket: wire protocol, command builders, asyncio connection."""
