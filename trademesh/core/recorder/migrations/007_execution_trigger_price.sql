-- A stop order's trigger price (the wire's Order.trigger_price), NULL for every other order: with
-- it an order's recorded request is whole, so a backtest can send a live session's orders again
-- (trademesh/core/backtest/recorded_orders.py). Rows recorded before it have NULL.

ALTER TABLE executions ADD COLUMN trigger_price numeric;
