module pion_peer

go 1.19
