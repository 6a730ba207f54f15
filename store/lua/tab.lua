-- tab.lua: after the prelude's six ARGV: the user and the tab. Answers the
-- tab's number, numbering it if it is new.
return tab_number(ARGV[7], ARGV[8])
