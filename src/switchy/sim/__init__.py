"""FreeSWITCH simulator: ESL server and switch model."""
