-- The venues' 24h open on their tickers (marketdata.v1.Ticker open_24h: the price 24 hours ago,
-- the open of the venue's rolling 24h window, the reference of its 24h change). Numbered 017:
-- 016 is the derivatives tables (mark_prices, open_interest, liquidations), made at the same time.
--
-- NUMERIC, exactly the wire's decimal string; NULL where the venue's ticker states none. Rows
-- recorded before this migration have NULL.

ALTER TABLE tickers ADD COLUMN open_24h numeric;
