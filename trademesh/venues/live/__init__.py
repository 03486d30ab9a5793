"""The live venue connector: one implementation on ccxt.pro for every exchange.

A venue folder (trademesh/venues/<name>/) only declares what differs: its LiveSpec (ccxt
class, options, native symbols, defaults) and its replay adapter. Everything else
(watch loops with reconnects and backoff, the watchdog, normalizing ccxt's
caches into exactly-once events, TradeFlow through ccxt) is here, with no
venue branches.
"""
